#!/usr/bin/env bash
# Install the real PanDA server for the end-to-end tests (idempotent, seconds when already there):
#   - Debian packages: Apache (+ apache2-dev for mod_wsgi), PostgreSQL 15 with pg_cron   (apt-get)
#   - the user atlpan / group zp the server runs as (its build hook chowns to them)
#   - $PANDA_ROOT/venv on Debian's python3 with panda-server[postgres]==$PANDA_SERVER_VERSION
#     and mod_wsgi (pip, from PyPI)
# The database schema is not installed here: start.sh loads it from $PANDA_DB_SCHEMA.
# Log: $PANDA_ROOT/logs/install.log
# usage: ci/panda/install.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/panda/env.sh
. "$HERE/env.sh"

[[ $(id -u) -eq 0 ]] || pdie "install.sh needs root (apt-get, the atlpan user, Apache)"
T0=$(pnow)
mkdir -p "$PANDA_ROOT/logs"
chmod 0755 "$PANDA_ROOT"
LOG="$PANDA_ROOT/logs/install.log"

missing=()
for p in "${PANDA_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    plog "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    opts=(-y -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=120 --no-install-recommends)
    # the packages must not start the system's Apache or PostgreSQL
    own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    rc=0
    apt-get install "${opts[@]}" "${missing[@]}" >>"$LOG" 2>&1 || {
        apt-get update -q >>"$LOG" 2>&1 && apt-get install "${opts[@]}" "${missing[@]}" >>"$LOG" 2>&1
    } || rc=$?
    [[ $own_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
    [[ $rc -eq 0 ]] || { tail -n 30 "$LOG" >&2; pdie "apt-get install failed (log $LOG)"; }
    plog "  Debian packages: $(pelapsed "$T0") s"
fi

getent group zp >/dev/null || groupadd -r zp
id atlpan >/dev/null 2>&1 || useradd -r -g zp -M -d "$PANDA_ROOT/home" -s /usr/sbin/nologin atlpan

if panda_installed; then
    plog "panda-server $PANDA_SERVER_VERSION already in $PANDA_VENV"
else
    t=$(pnow)
    [[ -x "$PANDA_VENV/bin/python" ]] || /usr/bin/python3 -m venv "$PANDA_VENV"
    plog "pip install panda-server[postgres]==$PANDA_SERVER_VERSION mod_wsgi (log $LOG)"
    # DISABLE_MM: the install hook leaves out an optional component the tests do not use
    if ! DISABLE_MM=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$PANDA_VENV/bin/pip" install -q \
            "panda-server[postgres]==$PANDA_SERVER_VERSION" mod_wsgi >>"$LOG" 2>&1; then
        grep -v '^WARNING: Location' "$LOG" | tail -n 30 >&2
        pdie "pip install failed (log $LOG)"
    fi
    panda_installed || pdie "panda-server $PANDA_SERVER_VERSION still missing in $PANDA_VENV"
    plog "  python packages: $(pelapsed "$t") s"
fi
plog "install: done in $(pelapsed "$T0") s"
