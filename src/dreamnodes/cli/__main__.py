import sys

from dreamnodes.cli.entry import main

sys.exit(main())
