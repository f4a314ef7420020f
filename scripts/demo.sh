#!/usr/bin/env bash
# README command (1): run one real job end to end on this machine with the bundled dev server and a
# local storage directory. Needs only python3 (3.9 or newer); the pilot itself has no other dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
  echo "python3 >= 3.9 is needed" >&2
  if command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq python3 >/dev/null; fi
fi
exec "$PY" scripts/demo.py "$@"
