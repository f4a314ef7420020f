#!/usr/bin/env bash
# Type-check the pilot with mypy (settings and strictness: the [mypy] section of setup.cfg).
# Prints mypy's report; exits non-zero when mypy finds an error.
# Usage: bash scripts/typecheck.sh [python]   (default: the test venv's python, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-${VENV:-$(pwd)/.venv}/bin/python}
[ -x "$PY" ] || PY=python3
start=$(date +%s)
set +e
"$PY" -m mypy pilot
rc=$?
set -e
echo "== mypy pilot: exit $rc ($(( $(date +%s) - start )) s)"
exit "$rc"
