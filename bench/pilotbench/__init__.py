"""Side-by-side benchmark of this pilot against the reference pilots (panda-pilot 2.12.8.1 and 3.7.0.36).

Everything the bench fetches or produces at run time lives in ``bench/work/`` (git-ignored); the report
it generates goes to ``bench/results/``. See ``bench/README.md`` for the one command.
"""

import os
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1]
REPO = BENCH_DIR.parent
#: $PILOTBENCH_WORK lets a second bench run beside another (its own venvs, server and runs)
WORK = Path(os.environ.get("PILOTBENCH_WORK") or BENCH_DIR / "work").resolve()
RESULTS = BENCH_DIR / "results"

PILOT2_VERSION = "2.12.8.1"
PILOT3_VERSION = "3.7.0.36"
