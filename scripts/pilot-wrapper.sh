#!/usr/bin/env bash
# A batch wrapper for the PanDA pilot, in the spirit of the PanDA pilot wrappers: what a site submits
# to its batch system (sbatch, condor_submit, qsub ...).
#
# Usage: pilot-wrapper.sh [wrapper options] [--] <pilot options, e.g. -q QUEUE --url URL ...>
#
#   --piloturl SRC   the pilot tarball: a file path, file://PATH, or an http(s):// URL (curl, else wget);
#                    default: $PILOT_TARBALL, else pilot.tar.gz next to this script
#   --python PY      the python3 to run the pilot with (default: $PILOT_PYTHON, else python3 on PATH);
#                    it must be 3.9 or newer, and needs no package at all
#   --workdir DIR    where the pilot runs (default: $PILOT_WORKDIR, else the batch job's directory);
#                    the pilot makes its own PanDA_Pilot2_* dir there (or under -a when given)
#   --keep           keep the unpacked pilot code (default: removed at the end)
#   -h, --help       this text
#
# Every other argument goes to pilot.py unchanged (the site's pilot options). The wrapper unpacks the
# tarball into a fresh directory, checks the python, sets up a clean environment for it, runs the pilot,
# forwards SIGTERM, SIGINT and SIGUSR1 to it (the pilot then stops its payload, uploads the log and
# reports the job) and exits with the pilot's exit status, which it explains in its last line.
# Its own exit statuses: 3 = no usable python (3.9+), 4 = the tarball cannot be fetched or unpacked,
# 2 = a wrapper usage mistake. doc/source/usage.rst lists them with the pilot's.
set -uo pipefail

WRAPPER_VERSION=1
log() { echo "$(date -u '+%Y-%m-%d %H:%M:%S') | pilot-wrapper | $*" >&2; }
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

SRC=${PILOT_TARBALL:-$(dirname "$0")/pilot.tar.gz}
PY=${PILOT_PYTHON:-python3}
WORKDIR=${PILOT_WORKDIR:-$PWD}
KEEP=0
PILOT_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --piloturl) [ $# -ge 2 ] || { log "--piloturl needs a value"; exit 2; }; SRC=$2; shift ;;
    --python) [ $# -ge 2 ] || { log "--python needs a value"; exit 2; }; PY=$2; shift ;;
    --workdir) [ $# -ge 2 ] || { log "--workdir needs a value"; exit 2; }; WORKDIR=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; PILOT_ARGS+=("$@"); break ;;
    *) PILOT_ARGS+=("$1") ;;
  esac
  shift
done

log "wrapper version $WRAPPER_VERSION on $(hostname -f 2>/dev/null || hostname) as $(id -un 2>/dev/null || id -u)," \
    "$(uname -sr)"
[ -n "${SLURM_JOB_ID:-}" ] && log "Slurm job $SLURM_JOB_ID"
[ -n "${_CONDOR_JOB_AD:-}" ] && log "HTCondor job ad $_CONDOR_JOB_AD"

# --- the work dir ----------------------------------------------------------------------------
if ! mkdir -p "$WORKDIR" || ! cd "$WORKDIR"; then
  log "cannot use the work dir $WORKDIR"
  exit 4
fi
WORKDIR=$PWD
log "work dir $WORKDIR ($(df -Ph . 2>/dev/null | awk 'NR==2 {print $4 " free"}'))"
CODE=$(mktemp -d "$WORKDIR/pilot-code-XXXXXX") || { log "cannot create a directory in $WORKDIR"; exit 4; }

# --- python ----------------------------------------------------------------------------------
if ! command -v "$PY" >/dev/null 2>&1; then
  log "no python: '$PY' is not found (give --python or \$PILOT_PYTHON)"
  rm -rf "$CODE"
  exit 3
fi
if ! PYVER=$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3]); sys.exit(sys.version_info < (3, 9))' \
    2>/dev/null); then
  log "python $("$PY" -V 2>&1) at $(command -v "$PY") is too old: the pilot needs 3.9 or newer"
  rm -rf "$CODE"
  exit 3
fi
log "python $PYVER at $(command -v "$PY")"

# --- fetch and unpack the pilot ----------------------------------------------------------------
fetch() {
  local src=$1 dest=$2
  case "$src" in
    http://*|https://*)
      if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 3 --connect-timeout 30 --max-time 600 ${PILOT_WRAPPER_CURL_OPTS:-} -o "$dest" "$src"
      elif command -v wget >/dev/null 2>&1; then
        wget -q --tries=3 --timeout=60 -O "$dest" "$src"
      else
        log "neither curl nor wget to fetch $src"
        return 1
      fi ;;
    file://*) cp "${src#file://}" "$dest" ;;
    *) cp "$src" "$dest" ;;
  esac
}
if ! fetch "$SRC" "$CODE/pilot.tar.gz"; then
  log "cannot fetch the pilot tarball from $SRC"
  rm -rf "$CODE"
  exit 4
fi
if ! tar xzf "$CODE/pilot.tar.gz" -C "$CODE" || [ ! -f "$CODE/pilot.py" ]; then
  log "cannot unpack $SRC (or it holds no pilot.py)"
  rm -rf "$CODE"
  exit 4
fi
log "pilot $(cat "$CODE/PILOTVERSION" 2>/dev/null || echo '(no PILOTVERSION)') from $SRC"

# --- environment -------------------------------------------------------------------------------
# the pilot's own code first; nothing from a user's Python set-up that could shadow it
unset PYTHONHOME PYTHONSTARTUP PYTHONSAFEPATH
export PYTHONPATH="$CODE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONNOUSERSITE=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export LANG=${LANG:-C.UTF-8}
export PILOT_WRAPPER_VERSION=$WRAPPER_VERSION
umask 022

# --- run the pilot, forwarding signals ---------------------------------------------------------
forward() {
  log "received SIG$1: forwarding it to the pilot (pid $PILOT_PID)"
  kill -s "$1" "$PILOT_PID" 2>/dev/null
}
log "running: $PY $CODE/pilot.py ${PILOT_ARGS[*]}"
"$PY" "$CODE/pilot.py" "${PILOT_ARGS[@]}" &
PILOT_PID=$!
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward USR1' USR1
while true; do
  wait "$PILOT_PID"
  STATUS=$?
  # wait also returns when a trapped signal arrives: go on until the pilot itself has ended
  kill -0 "$PILOT_PID" 2>/dev/null || break
done
trap - TERM INT USR1

MEANING=$(PYTHONPATH="$CODE" "$PY" -c \
  'import sys; from pilot.util.summary import exit_status_meaning; print(exit_status_meaning(int(sys.argv[1])))' \
  "$STATUS" 2>/dev/null || echo "see doc/source/usage.rst")
[ "$KEEP" = 1 ] || rm -rf "$CODE"
log "pilot exit status $STATUS: $MEANING"
exit "$STATUS"
