# shellcheck shell=bash
# Common settings and helpers for the loopback storage services used by the
# copytool / Rucio integration tests.  Source it:  . ci/storage/env.sh
#
# Everything lives under $STORAGE_ROOT (default /tmp/pilot-storage):
#   data/         shared namespace (xrootd localroot, nginx root, file:// RSEs)
#   pki/          test CA, server certificate, client "proxy"
#   xrootd/       xrootd config, admin/run/log, TLS copy owned by xrootd
#   nginx/        nginx config, pid, logs, temp dirs
#   rucio/        Rucio server config (etc/rucio.cfg), client config
#                 (etc/rucio-client.cfg), SQLite DB, logs, pid
#   rucio-venv/   Rucio server virtualenv (rucio + gunicorn)
#   logs/         setup logs

STORAGE_CI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export STORAGE_CI_DIR

export STORAGE_ROOT="${STORAGE_ROOT:-/tmp/pilot-storage}"
export STORAGE_DATA="$STORAGE_ROOT/data"
export STORAGE_HOST=127.0.0.1

export STORAGE_XROOTD_PORT="${STORAGE_XROOTD_PORT:-1094}"
export STORAGE_NGINX_HTTP_PORT="${STORAGE_NGINX_HTTP_PORT:-18480}"
export STORAGE_NGINX_HTTPS_PORT="${STORAGE_NGINX_HTTPS_PORT:-18443}"
export STORAGE_RUCIO_PORT="${STORAGE_RUCIO_PORT:-18580}"

export STORAGE_PKI="$STORAGE_ROOT/pki"
export STORAGE_RUCIO_HOME="$STORAGE_ROOT/rucio"
export STORAGE_RUCIO_VENV="$STORAGE_ROOT/rucio-venv"
export STORAGE_RUCIO_SERVER_CFG="$STORAGE_RUCIO_HOME/etc/rucio.cfg"
export STORAGE_RUCIO_CLIENT_CFG="$STORAGE_RUCIO_HOME/etc/rucio-client.cfg"

export STORAGE_RUCIO_VERSION=41.5.1
# Debian bookworm packages (names and the CPython 3.11 bindings are Debian 12 specific)
# shellcheck disable=SC2034  # used by setup-all.sh
STORAGE_APT_PACKAGES=(
    xrootd-server xrootd-client xrootd-plugins xrootd-server-plugins python3-xrootd
    gfal2 gfal2-plugin-file gfal2-plugin-xrootd gfal2-plugin-http
    python3-gfal2 python3-gfal2-util gfal2-util-scripts
    nginx libnginx-mod-http-dav-ext
    openssl acl ca-certificates curl
)
# Python modules of the Debian packages that link_debian_python exposes to a venv
STORAGE_DEBIAN_PYMODULES=(XRootD pyxrootd gfal2 gfal2_util)
STORAGE_DEBIAN_DIST=/usr/lib/python3/dist-packages

slog() {
    printf '[storage %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

sdie() {
    slog "ERROR: $*"
    exit 1
}

# seconds since epoch with sub-second precision
snow() {
    date +%s.%N
}

# selapsed START -> "1.23"
selapsed() {
    awk -v s="$1" -v e="$(snow)" 'BEGIN { printf "%.2f", e - s }'
}

# port_open PORT [HOST] : true if something accepts TCP connections there
port_open() {
    local port=$1 host=${2:-$STORAGE_HOST}
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# wait_port NAME PORT TIMEOUT_S [PID] : poll the port every 0.1 s until it
# answers; give up after TIMEOUT_S, or at once if PID (when given) has died.
wait_port() {
    local name=$1 port=$2 timeout=$3 pid=${4:-}
    local tries=$((timeout * 10)) i
    for ((i = 0; i < tries; i++)); do
        if port_open "$port"; then
            return 0
        fi
        if [[ -n "$pid" ]] && ! proc_running "$pid"; then
            slog "$name: process $pid died before port $port answered"
            return 1
        fi
        sleep 0.1
    done
    slog "$name: port $port did not answer within ${timeout}s"
    return 1
}

# proc_running PID : true if PID is a live process.  A zombie counts as dead:
# in containers PID 1 may reap exited daemons only every few seconds.
proc_running() {
    local pid=$1 stat
    kill -0 "$pid" 2>/dev/null || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ "${stat%% *}" != Z ]]
}

# pid_alive PIDFILE : true if the pid file names a live process (prints the pid)
pid_alive() {
    local pidfile=$1 pid
    [[ -s "$pidfile" ]] || return 1
    pid=$(<"$pidfile")
    pid=${pid//[^0-9]/}
    [[ -n "$pid" ]] && proc_running "$pid" || return 1
    echo "$pid"
}

# stop_pidfile NAME PIDFILE [SIGNAL] : signal the process, wait up to 10 s for
# it to exit, then SIGKILL its process group (each daemon has its own session,
# so this also ends workers left behind).  Removes the pid file.
stop_pidfile() {
    local name=$1 pidfile=$2 sig=${3:-TERM} pid i
    if ! pid=$(pid_alive "$pidfile"); then
        slog "$name: not running"
        rm -f "$pidfile"
        return 0
    fi
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        proc_running "$pid" || break
        sleep 0.05
    done
    if proc_running "$pid"; then
        slog "$name: pid $pid still alive after 10 s, sending KILL"
        local pgid own
        pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')
        own=$(ps -o pgid= -p $$ 2>/dev/null | tr -d ' ')
        if [[ -n "$pgid" && "$pgid" -gt 1 && "$pgid" != "$own" ]]; then
            kill -KILL -- "-$pgid" 2>/dev/null || true
        else
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.2
    fi
    rm -f "$pidfile"
    slog "$name: stopped (pid $pid)"
}

# as_root CMD... : run as root (directly, or through sudo when available)
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -E "$@"
    else
        sdie "need root for: $*"
    fi
}

# make_pki : test CA, server certificate (SAN localhost + 127.0.0.1), client
# cert+key ("x509up", used as X509_USER_PROXY), hashed CA dir and a CA bundle.
# Idempotent: keeps an existing PKI whose server certificate is valid > 1 day.
make_pki() {
    local d=$STORAGE_PKI
    if [[ -s "$d/ca.pem" && -s "$d/server.pem" && -s "$d/server.key" && -s "$d/x509up" \
          && -s "$d/ca-bundle.pem" && -d "$d/certificates" ]] \
       && openssl x509 -checkend 86400 -noout -in "$d/server.pem" >/dev/null 2>&1; then
        return 0
    fi
    command -v openssl >/dev/null || sdie "openssl missing: run ci/storage/setup-all.sh first"
    slog "creating test PKI in $d"
    rm -rf "$d"
    mkdir -p "$d/certificates"
    chmod 0755 "$d"
    (
        set -e
        cd "$d"
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
            -keyout ca.key -out ca.pem -subj "/DC=test/O=PilotStorageTest/CN=Pilot Test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
        cat >server.ext <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EOF
        openssl req -newkey rsa:2048 -nodes -sha256 -keyout server.key -out server.csr \
            -subj "/DC=test/O=PilotStorageTest/CN=localhost" >/dev/null 2>&1
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -days 825 -sha256 -extfile server.ext -out server.pem >/dev/null 2>&1
        cat >user.ext <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
        openssl req -newkey rsa:2048 -nodes -sha256 -keyout user.key -out user.csr \
            -subj "/DC=test/O=PilotStorageTest/CN=pilot test user" >/dev/null 2>&1
        openssl x509 -req -in user.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -days 825 -sha256 -extfile user.ext -out user.pem >/dev/null 2>&1
        cat user.pem user.key >x509up
        chmod 0600 x509up user.key server.key ca.key
        rm -f ./*.csr ./*.ext
        local_hash=$(openssl x509 -hash -noout -in ca.pem)
        cp ca.pem "certificates/$local_hash.0"
        cp ca.pem certificates/pilot-test-ca.pem
        if [[ -s /etc/ssl/certs/ca-certificates.crt ]]; then
            cat /etc/ssl/certs/ca-certificates.crt ca.pem >ca-bundle.pem
        else
            cp ca.pem ca-bundle.pem
        fi
        chmod 0644 ca.pem ca-bundle.pem server.pem user.pem certificates/*
    ) || sdie "make_pki failed"
}

# prepare_data_dir : the shared namespace, owned by xrootd with a default ACL so
# that files created as root through file:// stay writable through root://.
prepare_data_dir() {
    mkdir -p "$STORAGE_ROOT" "$STORAGE_DATA"
    chmod 0755 "$STORAGE_ROOT"
    if id xrootd >/dev/null 2>&1; then
        chown xrootd:xrootd "$STORAGE_DATA"
        chmod 0775 "$STORAGE_DATA"
        if command -v setfacl >/dev/null 2>&1; then
            setfacl -m u:xrootd:rwx -m d:u:xrootd:rwx "$STORAGE_DATA"
        else
            slog "WARNING: setfacl missing (package acl): files created as root may not be writable by xrootd"
        fi
    fi
}

# venv_python VENV : path of the venv's python
venv_python() {
    local v=$1
    if [[ -x "$v/bin/python" ]]; then
        echo "$v/bin/python"
    else
        echo "$v/bin/python3"
    fi
}

# link_debian_python VENV : expose Debian's gfal2 / XRootD Python bindings
# (python3-gfal2, python3-gfal2-util, python3-xrootd) to a (pyenv) venv via
# symlinks in VENV/lib/debian-bindings plus a debian-bindings.pth file.
# --system-site-packages would not help: a pyenv venv never sees
# /usr/lib/python3/dist-packages.  Needs CPython 3.11 (Debian 12's ABI).
link_debian_python() {
    local venv=$1 py site dir pyver m found
    [[ -n "$venv" ]] || sdie "link_debian_python: VENV missing"
    py=$(venv_python "$venv")
    [[ -x "$py" ]] || sdie "link_debian_python: no python in $venv"
    pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if [[ "$pyver" != "3.11" ]]; then
        slog "WARNING: $venv is Python $pyver; Debian 12's gfal2/XRootD bindings are built for 3.11: not linked"
        return 0
    fi
    site=$("$py" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    dir="$venv/lib/debian-bindings"
    mkdir -p "$dir"
    for m in "${STORAGE_DEBIAN_PYMODULES[@]}"; do
        found=0
        for f in "$STORAGE_DEBIAN_DIST/$m" "$STORAGE_DEBIAN_DIST/$m".*.so "$STORAGE_DEBIAN_DIST/$m".so; do
            if [[ -e "$f" ]]; then
                ln -sfn "$f" "$dir/$(basename "$f")"
                found=1
            fi
        done
        [[ $found -eq 1 ]] || slog "WARNING: $m not found in $STORAGE_DEBIAN_DIST"
    done
    echo "$dir" >"$site/debian-bindings.pth"
}

storage_require_installed() {
    local missing=()
    command -v xrootd >/dev/null || missing+=(xrootd)
    command -v nginx >/dev/null || missing+=(nginx)
    [[ -x "$STORAGE_RUCIO_VENV/bin/gunicorn" ]] || missing+=("$STORAGE_RUCIO_VENV")
    if [[ ${#missing[@]} -gt 0 ]]; then
        sdie "not installed: ${missing[*]} (run ci/storage/setup-all.sh VENV first)"
    fi
}
