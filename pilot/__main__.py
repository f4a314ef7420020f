"""``python -m pilot``: the same as ``pilot.py`` and the ``pilot`` command."""

import sys

from pilot.main import main

if __name__ == "__main__":
    sys.exit(main())
