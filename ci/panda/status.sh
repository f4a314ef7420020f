#!/usr/bin/env bash
# Is the real PanDA server up? Exit 0 when PostgreSQL, Apache (is_alive) and the daemon all run.
# usage: ci/panda/status.sh
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/panda/env.sh
. "$HERE/env.sh"

down=0
if port_open "$PANDA_PG_PORT"; then echo "postgres up    $PANDA_HOST:$PANDA_PG_PORT"; else echo "postgres down"; down=1; fi
if curl -fsS -m 30 -H 'Accept: application/json' "$PANDA_URL/api/v1/system/is_alive" 2>/dev/null \
        | grep -q '"success": *true'; then
    echo "server   up    $PANDA_URL (panda-server $PANDA_SERVER_VERSION)"
else
    echo "server   down  $PANDA_URL"; down=1
fi
if pid=$(pid_alive "$PANDA_ROOT/log/panda_daemon.pid"); then echo "daemon   up    pid $pid"; else echo "daemon   down"; down=1; fi
exit $down
