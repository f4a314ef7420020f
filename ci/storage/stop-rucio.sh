#!/usr/bin/env bash
# Stop the gunicorn Rucio server started by start-rucio.sh (the DB is kept).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/storage/env.sh
. "$HERE/env.sh"
stop_pidfile rucio "$STORAGE_RUCIO_HOME/run/gunicorn.pid" INT  # quick shutdown
