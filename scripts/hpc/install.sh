#!/usr/bin/env bash
# System packages for the HPC and batch tests: Open MPI with mpi4py (Debian's python3-mpi4py, for the
# system python3) and a single-node Slurm with munge. Idempotent: installs only what is missing.
# The daemons are not started here (tests/e2e/hpc starts a private cluster with slurm-start.sh;
# Debian's packages start nothing without systemd).
# Usage: bash scripts/hpc/install.sh
set -euo pipefail

need=()
command -v mpirun >/dev/null 2>&1 || need+=(openmpi-bin libopenmpi-dev)
/usr/bin/python3 -c 'import mpi4py' >/dev/null 2>&1 || need+=(python3-mpi4py)
command -v slurmctld >/dev/null 2>&1 || need+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || need+=(slurmd)
command -v sbatch >/dev/null 2>&1 || need+=(slurm-client)
command -v munged >/dev/null 2>&1 || need+=(munge)

if [ ${#need[@]} -eq 0 ]; then
  echo "== HPC test tools present: $(mpirun --version 2>/dev/null | head -1), $(slurmctld -V 2>/dev/null)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
  else
    echo "missing ${need[*]} and this user cannot install packages (need root or sudo)" >&2
    exit 1
  fi
fi
command -v apt-get >/dev/null 2>&1 || { echo "apt-get not available: install ${need[*]} by hand" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
echo "== installing ${need[*]}"
$SUDO apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
  $SUDO apt-get update -qq
  $SUDO apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
}
command -v mpirun >/dev/null 2>&1 && command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1 || {
  echo "HPC tools installation failed" >&2
  exit 1
}
echo "== HPC test tools installed: $(mpirun --version 2>/dev/null | head -1), $(slurmctld -V 2>/dev/null)"
