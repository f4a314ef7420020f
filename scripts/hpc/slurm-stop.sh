#!/usr/bin/env bash
# Stop the private Slurm cluster started by slurm-start.sh: slurmd, slurmctld and munged, each by the
# pid recorded in the state directory (nothing else is signalled). Jobs still running are cancelled
# first through Slurm itself.
# Usage: bash scripts/hpc/slurm-stop.sh [STATE_DIR]
set -uo pipefail

STATE=${1:-${PILOT_SLURM_DIR:-/tmp/pilot-slurm}}
[ -d "$STATE" ] || exit 0
export SLURM_CONF=$STATE/slurm.conf

pid_of() { [ -f "$1" ] && cat "$1" 2>/dev/null; }
stop_pid() {  # stop_pid PIDFILE NAME: SIGTERM, wait up to 10 s, then SIGKILL
  local pid
  pid=$(pid_of "$1") || return 0
  [ -n "$pid" ] || return 0
  # only the daemon this state dir started: the pid must still run that program
  if ! tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "$2"; then
    rm -f "$1"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$1"
}

if [ -f "$SLURM_CONF" ] && [ -n "$(pid_of "$STATE/slurmctld.pid")" ]; then
  timeout 10 scancel --quiet --full --user="$(id -un)" 2>/dev/null || true
fi
stop_pid "$STATE/slurmd.pid" slurmd
stop_pid "$STATE/slurmctld.pid" slurmctld
stop_pid "$STATE/munge/munged.pid" munged
echo "slurm-stop: stopped the cluster of $STATE"
