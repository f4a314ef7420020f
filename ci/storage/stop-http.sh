#!/usr/bin/env bash
# Stop the nginx started by start-http.sh (fast shutdown, KILL after 10 s).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/storage/env.sh
. "$HERE/env.sh"
stop_pidfile nginx "$STORAGE_ROOT/nginx/run/nginx.pid" TERM  # fast shutdown
