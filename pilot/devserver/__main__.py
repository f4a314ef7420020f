"""Run the dev server command line: ``python -m pilot.devserver --help``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
