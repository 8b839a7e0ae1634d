"""The `dreamnodes` command line: nodes, describe, options, run, runs, sandbox, webhook.

`entry` parses and dispatches (`main`); `commands` does nodes, describe and run; `runs` reads
the run log and retries; `webhook` serves the callback receiver; `output` prints the contract
(JSON on stdout, one line on stderr, exit 2 for bad input, 1 for the rest).
May import: every room of the runtime, and `sandbox` (only when asked for).
"""

from dreamnodes.cli.entry import main

__all__ = ["main"]
