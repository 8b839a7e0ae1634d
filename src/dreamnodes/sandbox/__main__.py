import sys

from dreamnodes.sandbox.cli import main

sys.exit(main())
