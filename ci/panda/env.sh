# shellcheck shell=bash
# Settings and helpers for the real PanDA server (panda-server from PyPI, REST API) on 127.0.0.1,
# used by the end-to-end tests in tests/e2e/realserver.  Source it:  . ci/panda/env.sh
#
# Everything lives under $PANDA_ROOT (default /tmp/pilot-panda):
#   venv/        the server's virtualenv (Debian's /usr/bin/python3: Apache's worker user must read it)
#   home/        PANDA_HOME: etc/panda/panda_server.cfg, panda_common.cfg
#   pgdata/      the PostgreSQL cluster (owned by postgres), pgrun/ its socket and log
#   httpd/       Apache config, pid, logs, mod_wsgi sockets
#   log/         the server's own logs (owned by atlpan)
#   cache/       the server's cache_dir; cache/schedconfig is served under /cache/schedconfig/
#   storage/     the loopback "disk" of the test queue (file:// RSE)
#   logs/        install/start logs of these scripts

PANDA_CI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PANDA_CI_DIR
PANDA_REPO_DIR=$(cd "$PANDA_CI_DIR/../.." && pwd)

export PANDA_ROOT="${PANDA_ROOT:-/tmp/pilot-panda}"
export PANDA_SERVER_VERSION="${PANDA_SERVER_VERSION:-1.0.4}"
export PANDA_VENV="$PANDA_ROOT/venv"
export PANDA_HOME="$PANDA_ROOT/home"
export PANDA_HOST=127.0.0.1
export PANDA_PORT="${PANDA_PORT:-18780}"
export PANDA_PG_PORT="${PANDA_PG_PORT:-18732}"
export PANDA_PG_BIN="${PANDA_PG_BIN:-/usr/lib/postgresql/15/bin}"
export PANDA_PGDATA="$PANDA_ROOT/pgdata"
export PANDA_PGRUN="$PANDA_ROOT/pgrun"
export PANDA_DB_NAME=panda_db
export PANDA_DB_USER=panda
export PANDA_DB_PASSWORD="${PANDA_DB_PASSWORD:-pilot-ci-only}"
export PANDA_STORAGE="$PANDA_ROOT/storage"
export PANDA_URL="http://$PANDA_HOST:$PANDA_PORT"
# the schema is not on any registry: a copy of panda-database (Apache-2.0) beside the repo
export PANDA_DB_SCHEMA="${PANDA_DB_SCHEMA:-$PANDA_REPO_DIR/../shared/vendor/panda-database-0.1.6}"
# the identity Apache hands to the server (mod_ssl + gridsite would take it from the pilot's proxy)
export PANDA_PILOT_DN="${PANDA_PILOT_DN:-/DC=test/O=PilotCI/CN=pilot ci}"
export PANDA_QUEUE="${PANDA_QUEUE:-PILOT_CI}"
export PANDA_SITE="${PANDA_SITE:-PILOT_CI_SITE}"
export PANDA_DDM="${PANDA_DDM:-PILOT_CI_DISK}"

# the environment of the server's processes (Apache, daemon): its bundled panda client resolves the
# public PanDA hosts at import time unless told where the server is
# shellcheck disable=SC2034  # used by start.sh
PANDA_SERVER_ENV=(PATH="$PANDA_VENV/bin:/usr/sbin:/usr/bin:/bin" LANG=C.UTF-8 PANDA_HOME="$PANDA_HOME"
                  HOME="$PANDA_HOME" PANDA_BEHIND_REAL_LB=1 PANDA_URL="$PANDA_URL/server/panda"
                  PANDA_URL_SSL="$PANDA_URL/server/panda" PANDACACHE_URL="$PANDA_URL/server/panda")

# shellcheck disable=SC2034  # used by install.sh
PANDA_APT_PACKAGES=(apache2 apache2-dev postgresql-15 postgresql-15-cron postgresql-client-15 python3-venv
                    python3-dev gcc curl)

plog() {
    printf '[panda %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

pdie() {
    plog "ERROR: $*"
    exit 1
}

pnow() {
    date +%s.%N
}

pelapsed() {
    awk -v s="$1" -v e="$(pnow)" 'BEGIN { printf "%.1f", e - s }'
}

# port_open PORT : something accepts TCP connections on 127.0.0.1:PORT
port_open() {
    (exec 3<>"/dev/tcp/$PANDA_HOST/$1") 2>/dev/null
}

# pid_alive PIDFILE : the pid file names a live, non-zombie process (prints the pid)
pid_alive() {
    local pidfile=$1 pid stat
    [[ -s "$pidfile" ]] || return 1
    pid=$(head -n 1 "$pidfile")
    pid=${pid//[^0-9]/}
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ "${stat%% *}" != Z ]] || return 1
    echo "$pid"
}

# psql_db [DB] ARGS... : psql as postgres on the test cluster
psql_db() {
    local db=$1
    shift
    "$PANDA_PG_BIN/psql" -X -q -h "$PANDA_HOST" -p "$PANDA_PG_PORT" -U postgres -d "$db" -v ON_ERROR_STOP=1 "$@"
}

panda_site_packages() {
    "$PANDA_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))'
}

panda_installed() {
    [[ -x "$PANDA_VENV/bin/python" ]] \
        && "$PANDA_VENV/bin/python" - "$PANDA_SERVER_VERSION" <<'PY' 2>/dev/null
import sys
import importlib.metadata as md
sys.exit(0 if md.version("panda-server") == sys.argv[1] and md.version("mod_wsgi") else 1)
PY
}
