#!/usr/bin/env bash
# Start xrootd on port $STORAGE_XROOTD_PORT (1094): root:// plus XrdHttp
# (http, https, davs on the same port), adler32 checksums, localroot
# $STORAGE_DATA, no authentication.  Idempotent.
#   XROOTD_HTTP=0   no XrdHttp
#   XROOTD_AUTH=unix  add the unix security protocol
# xrootd refuses to run as root: it is started with -R xrootd.  It has no bind
# address directive, so it listens on all addresses (-I v4); clients use 127.0.0.1.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/storage/env.sh
. "$HERE/env.sh"

D="$STORAGE_ROOT/xrootd"
PIDFILE="$D/run/xrootd.pid"
CFG="$D/xrootd.cfg"
PORT=$STORAGE_XROOTD_PORT

if pid=$(pid_alive "$PIDFILE") && port_open "$PORT"; then
    slog "xrootd: already running (pid $pid, port $PORT)"
    exit 0
fi
if pid=$(pid_alive "$PIDFILE"); then
    slog "xrootd: pid $pid alive but port $PORT not answering: restarting"
    stop_pidfile xrootd "$PIDFILE" TERM
fi
if port_open "$PORT"; then
    sdie "xrootd: port $PORT is taken by another process"
fi
command -v xrootd >/dev/null || sdie "xrootd not installed: run ci/storage/setup-all.sh VENV first"
id xrootd >/dev/null 2>&1 || sdie "user xrootd missing (package xrootd-server)"

t0=$(snow)
make_pki
prepare_data_dir
mkdir -p "$D/admin" "$D/run" "$D/log" "$D/tls"
install -m 0644 -o xrootd -g xrootd "$STORAGE_PKI/server.pem" "$D/tls/server.pem"
install -m 0600 -o xrootd -g xrootd "$STORAGE_PKI/server.key" "$D/tls/server.key"
chown -R xrootd:xrootd "$D/admin" "$D/run" "$D/log" "$D/tls"

{
    echo "all.export /"
    echo "all.role server"
    echo "oss.localroot $STORAGE_DATA"
    echo "all.adminpath $D/admin"
    echo "all.pidpath $D/run"
    echo "xrd.port $PORT"
    echo "xrootd.chksum adler32"
    if [[ "${XROOTD_HTTP:-1}" == 1 ]]; then
        echo "xrd.protocol XrdHttp:$PORT libXrdHttp.so"
        echo "xrd.tls $D/tls/server.pem $D/tls/server.key"
        echo "xrd.tlsca certdir $STORAGE_PKI/certificates"
    fi
    if [[ "${XROOTD_AUTH:-none}" == unix ]]; then
        echo "xrootd.seclib libXrdSec.so"
        echo "sec.protocol unix"
    fi
} >"$CFG"

rm -f "$PIDFILE"
xrootd -b -R xrootd -I v4 -c "$CFG" -l "$D/log/xrootd.log" -s "$PIDFILE" \
    >>"$D/log/xrootd.stdout" 2>&1 || {
    tail -n 30 "$D/log/xrootd.log" >&2 2>/dev/null || true
    sdie "xrootd: failed to start"
}
# the pid file appears shortly after the fork
for _ in $(seq 50); do
    [[ -s "$PIDFILE" ]] && break
    sleep 0.05
done
pid=$(pid_alive "$PIDFILE" || true)
if ! wait_port xrootd "$PORT" 15 "$pid"; then
    tail -n 30 "$D/log/xrootd.log" >&2 2>/dev/null || true
    sdie "xrootd: not answering on $PORT"
fi
slog "xrootd: up (pid ${pid:-?}) root://$STORAGE_HOST:$PORT https/davs://$STORAGE_HOST:$PORT in $(selapsed "$t0")s"
