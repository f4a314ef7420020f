#!/usr/bin/env bash
# Start the real PanDA server on 127.0.0.1 (idempotent: what runs already is left alone):
#   1. PostgreSQL 15 (own cluster in $PANDA_ROOT/pgdata, port $PANDA_PG_PORT, pg_cron preloaded)
#   2. the schema (schema.sh, from $PANDA_DB_SCHEMA)
#   3. the server's configuration ($PANDA_HOME/etc/panda) and the test queue $PANDA_QUEUE in
#      schedconfig_json, dumped to the schedconfig cache the pilot reads (/cache/schedconfig/)
#   4. Apache + mod_wsgi serving the server on http://127.0.0.1:$PANDA_PORT (and $PANDA_ROOT/trf under
#      /trf/, as PanDA servers serve transformations), as atlpan:zp; the client
#      identity mod_ssl/gridsite would give comes from SetEnv (DN $PANDA_PILOT_DN, production role)
#   5. the server's daemon master with add_main (holding -> finished/failed, every 5 s; a run is never cut
#      short: a worker killed mid-run leaves its job locked in holding for 10 min)
# Needs install.sh first. Logs: $PANDA_ROOT/logs, $PANDA_ROOT/httpd/log, $PANDA_ROOT/log.
# usage: ci/panda/start.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/panda/env.sh
. "$HERE/env.sh"

[[ $(id -u) -eq 0 ]] || pdie "start.sh needs root (PostgreSQL and Apache run as their own users)"
panda_installed || pdie "panda-server $PANDA_SERVER_VERSION not installed: run ci/panda/install.sh first"
[[ -f "$PANDA_DB_SCHEMA/postgres/sqls/init_step.sql" ]] \
    || pdie "the PanDA database schema is missing: $PANDA_DB_SCHEMA (set PANDA_DB_SCHEMA)"
T0=$(pnow)
SITE=$(panda_site_packages)
mkdir -p "$PANDA_ROOT/logs" "$PANDA_HOME/etc/panda" "$PANDA_ROOT/httpd/run" "$PANDA_ROOT/httpd/log" \
         "$PANDA_ROOT/log" "$PANDA_ROOT/cache/schedconfig" "$PANDA_ROOT/keys" "$PANDA_ROOT/auth" \
         "$PANDA_STORAGE" "$PANDA_PGRUN"
chmod 0755 "$PANDA_ROOT" "$PANDA_HOME" "$PANDA_ROOT/httpd"
chown -R atlpan:zp "$PANDA_ROOT/log" "$PANDA_ROOT/cache" "$PANDA_ROOT/keys" "$PANDA_ROOT/httpd/run"
chown postgres:postgres "$PANDA_PGRUN"
chmod 0777 "$PANDA_STORAGE"

# --- 1. PostgreSQL ------------------------------------------------------------------------------
as_postgres() {
    runuser -u postgres -- "$@"
}
if [[ ! -s "$PANDA_PGDATA/PG_VERSION" ]]; then
    t=$(pnow)
    rm -rf "$PANDA_PGDATA"
    install -d -o postgres -g postgres -m 0700 "$PANDA_PGDATA"
    as_postgres "$PANDA_PG_BIN/initdb" -D "$PANDA_PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$PANDA_ROOT/logs/initdb.log" 2>&1 || { tail -n 20 "$PANDA_ROOT/logs/initdb.log" >&2; pdie "initdb failed"; }
    cat >>"$PANDA_PGDATA/postgresql.conf" <<CONF
# pilot CI (ci/panda/start.sh)
listen_addresses = '$PANDA_HOST'
port = $PANDA_PG_PORT
unix_socket_directories = '$PANDA_PGRUN'
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    plog "postgres: cluster created in $(pelapsed "$t") s"
fi
if as_postgres "$PANDA_PG_BIN/pg_ctl" -D "$PANDA_PGDATA" status >/dev/null 2>&1; then
    plog "postgres: already running (port $PANDA_PG_PORT)"
else
    port_open "$PANDA_PG_PORT" && pdie "postgres: port $PANDA_PG_PORT is taken by another process"
    as_postgres "$PANDA_PG_BIN/pg_ctl" -D "$PANDA_PGDATA" -l "$PANDA_PGRUN/postgres.log" -w -t 60 start >/dev/null \
        || { tail -n 20 "$PANDA_PGRUN/postgres.log" >&2; pdie "postgres did not start"; }
    plog "postgres: started (port $PANDA_PG_PORT)"
fi

# --- 2. schema ----------------------------------------------------------------------------------
bash "$HERE/schema.sh"

# --- 3. configuration and the test queue --------------------------------------------------------
sed -e '/^\[logger\]/,/^\[/ s|^logdir *=.*|logdir='"$PANDA_ROOT/log"'|' \
    "$PANDA_VENV/etc/panda/panda_common.cfg.rpmnew" >"$PANDA_HOME/etc/panda/panda_common.cfg"
"$PANDA_VENV/bin/python" - "$PANDA_VENV/etc/panda/panda_server.cfg.rpmnew" \
        "$PANDA_HOME/etc/panda/panda_server.cfg" <<PY
import configparser
import json
import sys

cfg = configparser.RawConfigParser(interpolation=None, strict=False)
cfg.optionxform = str
cfg.read(sys.argv[1])
server = {
    "backend": "postgres", "dbhost": "$PANDA_HOST", "dbport": "$PANDA_PG_PORT", "dbuser": "$PANDA_DB_USER",
    "dbpasswd": "$PANDA_DB_PASSWORD", "dbname": "$PANDA_DB_NAME", "nDBConnection": "2",
    "logdir": "$PANDA_ROOT/log", "cache_dir": "$PANDA_ROOT/cache", "keyDir": "$PANDA_ROOT/keys",
    "certdir": "$PANDA_ROOT/keys", "auth_config": "$PANDA_ROOT/auth/", "token_authType": "None",
    "home_dir_cwd": "$PANDA_HOME",
    "schedconfig_cache_dir": "$PANDA_ROOT/cache/schedconfig",
    "pserverhost": "$PANDA_HOST", "pserverhosthttp": "$PANDA_HOST", "pserveralias": "$PANDA_HOST",
    "pserverport": "$PANDA_PORT", "pserverporthttp": "$PANDA_PORT", "pserverportcache": "$PANDA_PORT",
    "pilot_owners": "$PANDA_PILOT_DN", "production_dns": "$PANDA_PILOT_DN",
    "adder_plugins": "local:pandaserver.dataservice.adder_dummy_plugin:AdderDummyPlugin",
    "setupper_plugins": "local:pandaserver.dataservice.setupper_dummy_plugin:SetupperDummyPlugin",
}
for key, value in server.items():
    cfg.set("server", key, value)
daemons = {"add_main": {"enable": True, "period": 5, "loop": True, "timeout": 900},
           "cache_schedconfig": {"enable": True, "period": 60}}
cfg.set("daemon", "enable", "True")
cfg.set("daemon", "n_proc", "2")
cfg.set("daemon", "config", json.dumps(daemons))
with open(sys.argv[2], "w") as handle:
    cfg.write(handle)
PY
chmod 0644 "$PANDA_HOME/etc/panda/"*.cfg

# the queue (CRIC fields the pilot reads) and its file:// storage, both described by the pilot's dev
# server helpers so that the real server and the dev server offer the same queue
PYTHONPATH="$PANDA_REPO_DIR" /usr/bin/python3 - "$PANDA_QUEUE" "$PANDA_DDM" "$PANDA_STORAGE" "$PANDA_SITE" \
        "$PANDA_ROOT/queue.json" "$PANDA_ROOT/storagedata.json" <<'PY'
import json
import sys

from pilot.devserver.info import default_queuedata, default_storagedata

queue, ddm, storage, site, queue_file, storage_file = sys.argv[1:]
data = default_queuedata(queue, ddm)
data.update({"atlas_site": site, "site": site, "gstat": site, "vo_name": "local", "pilot_version": "current",
             "status": "online", "state": "ACTIVE", "maxtime": 3600, "maxwdir": 20000,
             "timefloor": 10})  # minutes: a pilot may run several jobs (-x limits it)
disk = default_storagedata(storage, ddm)
disk.update({"site": site, "rc_site": site})
with open(queue_file, "w") as handle:
    json.dump(data, handle)
with open(storage_file, "w") as handle:
    json.dump({ddm: disk}, handle)
PY
chmod 0644 "$PANDA_ROOT/queue.json" "$PANDA_ROOT/storagedata.json"
psql_db "$PANDA_DB_NAME" -v queue="$PANDA_QUEUE" -v data="$(cat "$PANDA_ROOT/queue.json")" >/dev/null <<'SQL'
INSERT INTO doma_panda.schedconfig_json (panda_queue, data, last_update)
    VALUES (:'queue', :'data', CURRENT_TIMESTAMP)
    ON CONFLICT (panda_queue) DO UPDATE SET data = EXCLUDED.data, last_update = EXCLUDED.last_update;
SQL
# the pilot's DN may read the object-store key pair pilotci_public/pilotci_private ('k' in gridpref, files in
# keyDir); no 'p': a proxy request is refused by the server without reaching for a MyProxy server
printf 'PILOTCI-ACCESS-KEY' >"$PANDA_ROOT/keys/pilotci_public"
printf 'PILOTCI-SECRET-KEY' >"$PANDA_ROOT/keys/pilotci_private"
chown atlpan:zp "$PANDA_ROOT/keys/"pilotci_*
chmod 0600 "$PANDA_ROOT/keys/"pilotci_*
psql_db "$PANDA_DB_NAME" -v name="$(basename "${PANDA_PILOT_DN##*/CN=}")" -v dn="$PANDA_PILOT_DN" >/dev/null <<'SQL'
DELETE FROM doma_pandameta.users WHERE name = :'name';
INSERT INTO doma_pandameta.users (id, name, dn, gridpref) VALUES (1, :'name', :'dn', 'k');
SQL
# transformations the tests' jobs download are served like a PanDA server's /trf/
mkdir -p "$PANDA_ROOT/trf"
chmod 0755 "$PANDA_ROOT/trf"
t=$(pnow)
# (os._exit: threads the server's libraries leave behind would keep the interpreter ~10 s after the dump)
runuser -u atlpan -- env -i "${PANDA_SERVER_ENV[@]}" "$PANDA_VENV/bin/python" -c \
    'import os, sys; from pandaserver.daemons.scripts.cache_schedconfig import main; main(argv=sys.argv)
sys.stdout.flush(); sys.stderr.flush(); os._exit(0)' \
    -o "$PANDA_ROOT/cache/schedconfig" >"$PANDA_ROOT/logs/cache_schedconfig.log" 2>&1 || true
[[ -s "$PANDA_ROOT/cache/schedconfig/$PANDA_QUEUE.all.json" ]] \
    || { tail -n 20 "$PANDA_ROOT/logs/cache_schedconfig.log" >&2; pdie "the schedconfig cache has no $PANDA_QUEUE"; }
plog "queue $PANDA_QUEUE: in schedconfig_json and its cache ($(pelapsed "$t") s)"

# --- 4. Apache + mod_wsgi -----------------------------------------------------------------------
H="$PANDA_ROOT/httpd"
HPID="$H/run/httpd.pid"
if pid=$(pid_alive "$HPID") && port_open "$PANDA_PORT"; then
    plog "apache: already running (pid $pid, port $PANDA_PORT)"
else
    port_open "$PANDA_PORT" && pdie "apache: port $PANDA_PORT is taken by another process"
    M=/usr/lib/apache2/modules
    {
        echo "# generated by ci/panda/start.sh"
        echo "ServerRoot /etc/apache2"
        echo "PidFile $HPID"
        echo "Listen $PANDA_HOST:$PANDA_PORT"
        echo "ServerName $PANDA_HOST"
        echo "User atlpan"
        echo "Group zp"
        echo "ErrorLog $H/log/error_log"
        echo "LogLevel warn"
        echo "DefaultRuntimeDir $H/run"
        echo "Mutex file:$H/run default"
        for m in mpm_event authz_core alias env mime; do
            echo "LoadModule ${m}_module $M/mod_${m}.so"
        done
        "$PANDA_VENV/bin/mod_wsgi-express" module-config
        cat <<CONF
LogFormat "%h %t \"%r\" %>s %b %D" timing
CustomLog $H/log/access_log timing
TypesConfig /etc/mime.types
TimeOut 600
KeepAliveTimeout 5
<Directory />
    AllowOverride None
    Require all denied
</Directory>
WSGISocketPrefix $H/run/wsgi
WSGIDaemonProcess pandasrv_daemon processes=2 threads=4 python-path=$SITE home=$PANDA_HOME user=atlpan group=zp
WSGIProcessGroup pandasrv_daemon
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAliasMatch ^(/server/panda/.+)|(/api/.+)$ $SITE/pandaserver/server/panda.py
WSGIPassAuthorization On
<Directory $SITE/pandaserver/server>
    Require all granted
</Directory>
Alias /trf/ $PANDA_ROOT/trf/
<Directory $PANDA_ROOT/trf>
    Require all granted
</Directory>
Alias /cache/schedconfig/ $PANDA_ROOT/cache/schedconfig/
<Directory $PANDA_ROOT/cache/schedconfig>
    Require all granted
</Directory>
SetEnv SSL_CLIENT_S_DN "$PANDA_PILOT_DN"
SetEnv GRST_CRED_AUTH_TOKEN_0 "VOMS /local/Role=production"
CONF
    } >"$H/httpd.conf"
    chown -R atlpan:zp "$H/run"
    env -i "${PANDA_SERVER_ENV[@]}" /usr/sbin/apache2 -f "$H/httpd.conf" -k start || pdie "apache did not start (see $H/log/error_log)"
    plog "apache: started on $PANDA_URL"
fi

# --- 5. the daemon master (add_main) ------------------------------------------------------------
DPID="$PANDA_ROOT/log/panda_daemon.pid"
if pid=$(pid_alive "$DPID"); then
    plog "daemon: already running (pid $pid)"
else
    # a daemon ended without stop.sh (killed, machine reused) leaves its pid file and lock behind
    rm -f "$DPID" "$DPID.lock"
    (
        cd "$PANDA_HOME"
        env -i "${PANDA_SERVER_ENV[@]}" setsid "$PANDA_VENV/bin/python" -u "$SITE/pandaserver/daemons/master.py" --pidfile "$DPID" \
            >>"$PANDA_ROOT/logs/daemon.log" 2>&1 </dev/null &
    )
    plog "daemon: started"
fi

# --- ready? -------------------------------------------------------------------------------------
for _ in $(seq 1 300); do
    if curl -fsS -m 5 -H 'Accept: application/json' "$PANDA_URL/api/v1/system/is_alive" 2>/dev/null \
            | grep -q '"success": *true'; then
        plog "start: the PanDA server $PANDA_SERVER_VERSION answers on $PANDA_URL ($(pelapsed "$T0") s)"
        exit 0
    fi
    sleep 0.2
done
tail -n 30 "$H/log/error_log" >&2 || true
pdie "the server did not answer $PANDA_URL/api/v1/system/is_alive within 60 s"
