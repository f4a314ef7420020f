#!/usr/bin/env bash
# Stop the xrootd started by start-xrootd.sh.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/storage/env.sh
. "$HERE/env.sh"
stop_pidfile xrootd "$STORAGE_ROOT/xrootd/run/xrootd.pid" TERM
