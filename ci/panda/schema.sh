#!/usr/bin/env bash
# Load the PanDA database schema into the running test cluster (called by start.sh; idempotent:
# does nothing when doma_panda.pandadb_version already has its row).
# The schema comes from $PANDA_DB_SCHEMA (panda-database, Apache-2.0, not on any registry), loaded
# unmodified in upstream order, with what the recipe in shared/panda-server-recipes.md learned:
#   - init_step.sql without its pg_partman lines (Debian's pg_partman is 4.x, the schema wants 5.x)
#   - doma_panda.worker_node_queue created from patches/0.0.31.patch.sql before the scheduler jobs
#     (upstream bug: "relation doma_panda.worker_node_queue does not exist")
#   - a DEFAULT partition for every partitioned table instead of pg_PARTITION.sql (partman)
#   - the cron jobs that call partman unscheduled
# usage: ci/panda/schema.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/panda/env.sh
. "$HERE/env.sh"

SQLS="$PANDA_DB_SCHEMA/postgres/sqls"
if psql_db postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PANDA_DB_NAME'" | grep -q 1 \
   && psql_db "$PANDA_DB_NAME" -tAc "SELECT count(*) FROM doma_panda.pandadb_version WHERE component = 'PanDA'" \
        2>/dev/null | grep -qx 1; then
    plog "schema: already loaded"
    exit 0
fi
[[ -f "$SQLS/init_step.sql" && -f "$PANDA_DB_SCHEMA/postgres/version" ]] \
    || pdie "schema: $SQLS/init_step.sql not found (set PANDA_DB_SCHEMA to a panda-database copy)"
t=$(pnow)
LOG="$PANDA_ROOT/logs/schema.log"
: >"$LOG"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e "s/\${PANDA_DB_PASSWORD}/$PANDA_DB_PASSWORD/g" -e '/partman/d' "$SQLS/init_step.sql" >"$tmp/init_step.sql"
psql_db postgres -f "$tmp/init_step.sql" >>"$LOG" 2>&1 || { tail -n 20 "$LOG" >&2; pdie "schema: init_step failed"; }
awk '/CREATE TABLE IF NOT EXISTS doma_panda.worker_node_queue/ { on = 1 }
     on { print }
     on && /OWNER TO panda;/ { exit }' "$SQLS/patches/0.0.31.patch.sql" >"$tmp/worker_node_queue.sql"
for comp in PANDA PANDAMETA PANDAARCH PANDABIGMON DEFT; do
    for sub in TABLE VIEW TYPE SEQUENCE FUNCTION TRIGGER SCHEDULER_JOBS PROCEDURE; do
        f="$SQLS/pg_${comp}_${sub}.sql"
        [[ -f "$f" ]] || continue
        if [[ "$comp/$sub" == PANDA/SCHEDULER_JOBS ]]; then
            psql_db "$PANDA_DB_NAME" -f "$tmp/worker_node_queue.sql" >>"$LOG" 2>&1 \
                || { tail -n 20 "$LOG" >&2; pdie "schema: worker_node_queue failed"; }
        fi
        # like upstream panda_db_init.sh: a statement that fails does not stop the file
        psql_db "$PANDA_DB_NAME" -v ON_ERROR_STOP=0 -f "$f" >>"$LOG" 2>&1 || pdie "schema: $f failed"
    done
done
# a DEFAULT partition for every partitioned table
psql_db "$PANDA_DB_NAME" -tA >"$tmp/partitions.sql" 2>>"$LOG" <<'SQL'
SELECT format('CREATE TABLE IF NOT EXISTS %I.%I PARTITION OF %I.%I DEFAULT;', n.nspname,
              left(c.relname, 55) || '_default', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'p' AND NOT c.relispartition;
SQL
psql_db "$PANDA_DB_NAME" -f "$tmp/partitions.sql" >>"$LOG" 2>&1 || { tail -n 20 "$LOG" >&2; pdie "schema: partitions failed"; }
psql_db "$PANDA_DB_NAME" -f "$SQLS/post_step_panda.sql" >>"$LOG" 2>&1 \
    || { tail -n 20 "$LOG" >&2; pdie "schema: post_step_panda.sql failed"; }
# pg_cron lives in the database named by cron.database_name (postgres)
psql_db postgres -f "$SQLS/post_step_cron.sql" >>"$LOG" 2>&1 \
    || { tail -n 20 "$LOG" >&2; pdie "schema: post_step_cron.sql failed"; }
psql_db postgres -c "DELETE FROM cron.job WHERE command LIKE '%partman%'" >>"$LOG" 2>&1
# the version row last: its presence means "loaded" to the next start
IFS=. read -r major minor patch <"$PANDA_DB_SCHEMA/postgres/version"
psql_db "$PANDA_DB_NAME" -c "INSERT INTO doma_panda.pandadb_version (component, major, minor, patch)
    VALUES ('PanDA', $major, $minor, $patch) ON CONFLICT (component) DO NOTHING" >>"$LOG" 2>&1
plog "schema: $major.$minor.$patch loaded in $(pelapsed "$t") s ($(grep -c ERROR "$LOG" || true) statement errors in $LOG)"
