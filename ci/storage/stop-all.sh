#!/usr/bin/env bash
# Stop all loopback storage services started by start-all.sh.
#   --wipe   also delete the data, the Rucio database and the server configs
#            (keeps the installed venvs and the PKI), for a clean next start
# usage: ci/storage/stop-all.sh [--wipe]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/storage/env.sh
. "$HERE/env.sh"

wipe=0
case "${1:-}" in
    --wipe) wipe=1 ;;
    "") ;;
    *) echo "usage: $0 [--wipe]" >&2; exit 2 ;;
esac

t0=$(snow)
rc=0
"$HERE/stop-rucio.sh" || rc=1
"$HERE/stop-http.sh" || rc=1
"$HERE/stop-xrootd.sh" || rc=1
if [[ $wipe -eq 1 ]]; then
    rm -rf "${STORAGE_DATA:?}" "${STORAGE_RUCIO_HOME:?}" "${STORAGE_ROOT:?}/xrootd" "${STORAGE_ROOT:?}/nginx"
    slog "stop-all: wiped data, Rucio DB and server configs under $STORAGE_ROOT"
fi
slog "stop-all: done in $(selapsed "$t0")s"
exit $rc
