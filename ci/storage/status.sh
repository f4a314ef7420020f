#!/usr/bin/env bash
# Print which loopback storage services are up; exit 1 if any is down.
# usage: ci/storage/status.sh
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/storage/env.sh
. "$HERE/env.sh"

down=0
check() {
    local name=$1 pidfile=$2 url=$3
    shift 3
    local pid state=up p
    pid=$(pid_alive "$pidfile") || pid=-
    for p in "$@"; do
        port_open "$p" || state=down
    done
    [[ "$pid" == - ]] && state=down
    [[ "$state" == up ]] || down=1
    printf '%-7s %-5s pid %-8s %s\n' "$name" "$state" "$pid" "$url"
}
check xrootd "$STORAGE_ROOT/xrootd/run/xrootd.pid" \
    "root://$STORAGE_HOST:$STORAGE_XROOTD_PORT https/davs://$STORAGE_HOST:$STORAGE_XROOTD_PORT" \
    "$STORAGE_XROOTD_PORT"
check nginx "$STORAGE_ROOT/nginx/run/nginx.pid" \
    "http://$STORAGE_HOST:$STORAGE_NGINX_HTTP_PORT https/davs://$STORAGE_HOST:$STORAGE_NGINX_HTTPS_PORT" \
    "$STORAGE_NGINX_HTTP_PORT" "$STORAGE_NGINX_HTTPS_PORT"
check rucio "$STORAGE_RUCIO_HOME/run/gunicorn.pid" "http://$STORAGE_HOST:$STORAGE_RUCIO_PORT" \
    "$STORAGE_RUCIO_PORT"
exit $down
