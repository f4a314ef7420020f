#!/usr/bin/env python3
"""PanDA pilot: take a job from the PanDA server, stage its inputs, run it, stage its outputs, report.

Usage: ``pilot.py -q <queue> [options]`` (``pilot.py --help`` lists every option).
"""

from __future__ import annotations

import gc
import sys

gc.disable()  # no collections while the pilot's modules load: main() freezes them and turns it back on

from pilot.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
