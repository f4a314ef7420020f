#!/usr/bin/env bash
# Install everything the storage integration tests need (idempotent, fast when
# already installed):
#   - Debian packages: xrootd (server, client, python3-xrootd), gfal2 (+file,
#     xrootd, http plugins, python3-gfal2, gfal2-util), nginx + WebDAV ext
#     module, openssl, acl                                  (apt-get)
#   - the Rucio server venv $STORAGE_ROOT/rucio-venv (rucio==41.5.1 gunicorn)
#   - rucio-clients==41.5.1 into VENV (the project's venv; created if missing)
#   - Debian's gfal2/XRootD Python bindings linked into VENV (.pth file)
#   - the test PKI and the shared data directory
# apt and the two Python installs run in parallel.  The Python packages are
# installed with uv (pip-installed into $STORAGE_ROOT/tools; several times
# faster than pip here), falling back to pip; STORAGE_USE_UV=0 forces pip.
# Logs: $STORAGE_ROOT/logs/setup-*.log
#
# usage: ci/storage/setup-all.sh VENV
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/storage/env.sh
. "$HERE/env.sh"

[[ $# -eq 1 && -n "$1" ]] || { echo "usage: $0 VENV" >&2; exit 2; }
VENV=$1
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac

T0=$(snow)
LOGDIR="$STORAGE_ROOT/logs"
mkdir -p "$LOGDIR"
chmod 0755 "$STORAGE_ROOT"
PYTHON=${STORAGE_PYTHON:-python3}
PIP_OPTS=(-q --disable-pip-version-check --no-input)

# --- helpers -----------------------------------------------------------------

apt_missing_packages() {
    local installed
    installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${STORAGE_APT_PACKAGES[@]}" 2>/dev/null \
                | awk '$2 == "installed" { print $1 }') || true
    local p
    for p in "${STORAGE_APT_PACKAGES[@]}"; do
        grep -qx -- "$p" <<<"$installed" || echo "$p"
    done
}

apt_lists_fresh() {
    # fresh = a Packages index younger than one day
    [[ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit 2>/dev/null)" ]]
}

# py_has_dists PYTHON NAME==VERSION|NAME ... : all distributions installed?
py_has_dists() {
    local py=$1
    shift
    [[ -x "$py" ]] || return 1
    "$py" - "$@" <<'EOF' 2>/dev/null
import sys
import importlib.metadata as md
for spec in sys.argv[1:]:
    name, _, ver = spec.partition("==")
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        sys.exit(1)
    if ver and have != ver:
        sys.exit(1)
EOF
}

job_apt() {
    local missing
    mapfile -t missing < <(apt_missing_packages)
    if [[ ${#missing[@]} -eq 0 ]]; then
        echo "all ${#STORAGE_APT_PACKAGES[@]} Debian packages already installed"
        return 0
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    local apt_opts=(-y -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=120 --no-install-recommends)
    # Never let the nginx package start the system nginx on port 80.
    local own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod 0755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local rc=0 updated=0
    if ! apt_lists_fresh; then
        echo "apt lists missing or older than a day: apt-get update"
        as_root apt-get update -q || rc=$?
        updated=1
    fi
    if [[ $rc -eq 0 ]] && ! as_root apt-get install "${apt_opts[@]}" "${missing[@]}"; then
        rc=1
        if [[ $updated -eq 0 ]]; then
            echo "apt-get install failed with the current lists: apt-get update and retry"
            as_root apt-get update -q && as_root apt-get install "${apt_opts[@]}" "${missing[@]}" && rc=0
        fi
    fi
    if [[ $own_policy -eq 1 ]]; then
        as_root rm -f /usr/sbin/policy-rc.d
    fi
    return $rc
}

# uv (from PyPI, pip-installed with --target into $STORAGE_ROOT/tools) creates
# the venvs and installs the ~80 wheels of the Rucio server several times faster
# than pip; pip remains the fallback (STORAGE_USE_UV=0 forces it).
TOOLS_DIR="$STORAGE_ROOT/tools"
UV=""
ensure_uv() {
    if [[ -x "$TOOLS_DIR/bin/uv" ]] && "$TOOLS_DIR/bin/uv" --version >/dev/null 2>&1; then
        return 0
    fi
    rm -rf "$TOOLS_DIR"
    PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install "${PIP_OPTS[@]}" --target "$TOOLS_DIR" uv \
        && "$TOOLS_DIR/bin/uv" --version
}

# make_venv DIR : a venv (with pip) of $PYTHON
make_venv() {
    local dir=$1 exe
    if [[ -n "$UV" ]]; then
        exe=$("$PYTHON" -c 'import sys; print(sys.executable)')
        if "$UV" venv --quiet --seed --python "$exe" "$dir"; then
            return 0
        fi
        echo "uv venv failed: falling back to python -m venv"
        rm -rf "$dir"
    fi
    "$PYTHON" -m venv "$dir"
}

# pyinstall PYTHON [--compile] SPEC... : install into the venv of PYTHON with uv, else pip.
# --compile: byte-compile at install time (pip always does): without it the
# first start of the Rucio server compiles on import and takes ~10 s longer.
pyinstall() {
    local py=$1 compile=()
    shift
    if [[ "${1:-}" == --compile ]]; then
        compile=(--compile-bytecode)
        shift
    fi
    if [[ -n "$UV" ]]; then
        echo "uv pip install $*"
        if "$UV" pip install --quiet "${compile[@]}" --python "$py" "$@"; then
            return 0
        fi
        echo "uv failed: falling back to pip"
    fi
    echo "pip install $*"
    "$py" -m pip install "${PIP_OPTS[@]}" "$@"
}

server_ready() {
    py_has_dists "$STORAGE_RUCIO_VENV/bin/python" "rucio==$STORAGE_RUCIO_VERSION" gunicorn
}

clients_ready() {
    py_has_dists "$(venv_python "$VENV")" "rucio-clients==$STORAGE_RUCIO_VERSION"
}

job_rucio_server() {
    local py="$STORAGE_RUCIO_VENV/bin/python"
    if server_ready; then
        echo "rucio $STORAGE_RUCIO_VERSION + gunicorn already in $STORAGE_RUCIO_VENV"
        return 0
    fi
    if [[ ! -x "$py" ]]; then
        make_venv "$STORAGE_RUCIO_VENV" || return 1
    fi
    pyinstall "$py" --compile "rucio==$STORAGE_RUCIO_VERSION" gunicorn || return 1
    server_ready || { echo "rucio/gunicorn still missing in $STORAGE_RUCIO_VENV"; return 1; }
    echo "installed rucio $STORAGE_RUCIO_VERSION + gunicorn into $STORAGE_RUCIO_VENV"
}

job_rucio_clients() {
    local py
    py=$(venv_python "$VENV")
    if clients_ready; then
        echo "rucio-clients $STORAGE_RUCIO_VERSION already in $VENV"
        return 0
    fi
    if [[ ! -x "$py" ]]; then
        echo "creating venv $VENV"
        make_venv "$VENV" || return 1
        py=$(venv_python "$VENV")
    fi
    pyinstall "$py" "rucio-clients==$STORAGE_RUCIO_VERSION" || return 1
    clients_ready || { echo "rucio-clients still missing in $VENV"; return 1; }
    echo "installed rucio-clients $STORAGE_RUCIO_VERSION into $VENV"
}

declare -A JOB_PID=()
start_job() {
    local name=$1
    (
        s=$(snow)
        rc=0
        "job_$name" >"$LOGDIR/setup-$name.log" 2>&1 || rc=$?
        echo "$rc $(selapsed "$s")" >"$LOGDIR/setup-$name.status"
        exit "$rc"
    ) &
    JOB_PID[$name]=$!
}

# --- run -----------------------------------------------------------------------

slog "setup-all: STORAGE_ROOT=$STORAGE_ROOT VENV=$VENV"
rm -f "$LOGDIR"/setup-*.status
start_job apt
if [[ "${STORAGE_USE_UV:-1}" == 1 ]] && ! { server_ready && clients_ready; }; then
    s=$(snow)
    if ensure_uv >"$LOGDIR/setup-uv.log" 2>&1; then
        UV="$TOOLS_DIR/bin/uv"
        export UV_LINK_MODE="${UV_LINK_MODE:-copy}"
        # follow pip's index if one is configured through the environment
        if [[ -n "${PIP_INDEX_URL:-}" && -z "${UV_INDEX_URL:-}" && -z "${UV_DEFAULT_INDEX:-}" ]]; then
            export UV_DEFAULT_INDEX="$PIP_INDEX_URL"
        fi
        slog "  uv: ready in $(selapsed "$s")s ($("$UV" --version))"
    else
        slog "  uv: not available ($(tail -n 1 "$LOGDIR/setup-uv.log")), using pip"
    fi
fi
start_job rucio_server
start_job rucio_clients

failed=()
for j in apt rucio_server rucio_clients; do
    wait "${JOB_PID[$j]}" || true
    read -r rc secs <"$LOGDIR/setup-$j.status" || { rc=99; secs='?'; }
    if [[ "$rc" -eq 0 ]]; then
        last=$(grep -v '^WARNING: Location' "$LOGDIR/setup-$j.log" 2>/dev/null | tail -n 1 | cut -c1-100) || true
        slog "  $j: ok in ${secs}s${last:+ ($last)}"
    else
        slog "  $j: FAILED (rc=$rc) after ${secs}s; log $LOGDIR/setup-$j.log:"
        sed 's/^/    | /' "$LOGDIR/setup-$j.log" >&2 || true
        failed+=("$j")
    fi
done
[[ ${#failed[@]} -eq 0 ]] || sdie "setup-all failed: ${failed[*]}"

s=$(snow)
link_debian_python "$VENV"
make_pki
prepare_data_dir
slog "  link bindings, PKI, data dir: $(selapsed "$s")s"

# sanity check of what the tests use
s=$(snow)
py=$(venv_python "$VENV")
"$py" -c 'import gfal2, gfal2_util, XRootD.client, rucio.client' \
    || sdie "the bindings or rucio-clients do not import in $VENV"
for tool in xrootd xrdcp xrdfs gfal-copy gfal-sum nginx openssl setfacl; do
    command -v "$tool" >/dev/null || sdie "$tool not found after installation"
done
GFAL_PYTHONBIN=/usr/bin/python3 gfal-copy --version >/dev/null 2>&1 \
    || sdie "gfal-copy does not run (GFAL_PYTHONBIN=/usr/bin/python3)"
[[ -e /usr/lib/nginx/modules/ngx_http_dav_ext_module.so ]] || sdie "nginx dav_ext module missing"
slog "  checks: $(selapsed "$s")s"
slog "setup-all: done in $(selapsed "$T0")s"
