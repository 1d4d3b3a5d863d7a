"""The ``tailguard`` command line: a thin shell over library functions.

``main()`` calls ``sys.exit``; ``run(argv) -> int`` returns the exit code, so tests check it.
Exit codes: 0 success, 1 an expected failure (one-line message, no traceback), 2 a usage error,
3 an unknown model (``price``).
"""

from tailguard.cli.app import app, main, run

__all__ = ["app", "main", "run"]
