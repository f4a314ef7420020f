#!/usr/bin/env bash
# Print the path of a CPython 3.9 (EL9's python3, the oldest the pilot supports): the machine image's
# pyenv build, a python3.9 on the PATH, else CPython 3.9 from Debian 11 packages unpacked by the bench's
# installer (bench/work/py39). Used by scripts/test.sh to run whole-pilot jobs on 3.9.
# Usage: bash scripts/python39.sh [base python]
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-python3}
"$base" - <<'PY'
import sys
sys.path.insert(0, ".")
from bench.pilotbench.install import find_python39

python, how = find_python39(None)
print(f"== Python 3.9 for the pilot: {python} ({how})", file=sys.stderr)
print(python)
PY
