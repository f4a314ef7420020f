#!/usr/bin/env python3
"""PanDA pilot: take a job from the PanDA server, stage its inputs, run it, stage its outputs, report.

Usage: ``pilot.py -q <queue> [options]`` (``pilot.py --help`` lists every option).
"""

from __future__ import annotations

import sys

from pilot.main import main

if __name__ == "__main__":
    sys.exit(main())
