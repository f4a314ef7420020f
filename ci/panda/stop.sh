#!/usr/bin/env bash
# Stop what start.sh started: the daemon master, Apache, PostgreSQL (each by its pid file).
# The data stay: the next start.sh is quick. PANDA_WIPE=1 also removes the database cluster.
# usage: ci/panda/stop.sh
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/panda/env.sh
. "$HERE/env.sh"

# stop_pid NAME PIDFILE : TERM, up to 15 s, then KILL; only the process the pid file names
stop_pid() {
    local name=$1 pidfile=$2 pid i
    if ! pid=$(pid_alive "$pidfile"); then
        plog "$name: not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        plog "$name: pid $pid still alive after 15 s: KILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    plog "$name: stopped (pid $pid)"
}

stop_pid daemon "$PANDA_ROOT/log/panda_daemon.pid"
rm -f "$PANDA_ROOT/log/panda_daemon.pid" "$PANDA_ROOT/log/panda_daemon.pid.lock"
if pid_alive "$PANDA_ROOT/httpd/run/httpd.pid" >/dev/null && [[ -s "$PANDA_ROOT/httpd/httpd.conf" ]]; then
    env -i PATH=/usr/sbin:/usr/bin:/bin /usr/sbin/apache2 -f "$PANDA_ROOT/httpd/httpd.conf" -k stop 2>/dev/null || true
fi
stop_pid apache "$PANDA_ROOT/httpd/run/httpd.pid"
if [[ -s "$PANDA_PGDATA/PG_VERSION" ]] \
   && runuser -u postgres -- "$PANDA_PG_BIN/pg_ctl" -D "$PANDA_PGDATA" status >/dev/null 2>&1; then
    runuser -u postgres -- "$PANDA_PG_BIN/pg_ctl" -D "$PANDA_PGDATA" -m fast -w -t 30 stop >/dev/null \
        && plog "postgres: stopped"
else
    plog "postgres: not running"
fi
if [[ "${PANDA_WIPE:-0}" == 1 ]]; then
    rm -rf "$PANDA_PGDATA" "$PANDA_ROOT/cache" "$PANDA_ROOT/log" "$PANDA_ROOT/storage"
    plog "database cluster, cache, logs and storage removed"
fi
exit 0
