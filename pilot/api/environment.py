"""The Environment API: where the pilot runs — MPI rank and size, batch system and slot.

MPI rank and size are read from the variables the launchers set for every rank, so no MPI library is
loaded (and MPI is never initialised) by the pilot:

====================  =======================================  ======================================
launcher              rank / size                              node-local rank / size
====================  =======================================  ======================================
Open MPI (mpirun)     ``OMPI_COMM_WORLD_RANK`` / ``_SIZE``     ``OMPI_COMM_WORLD_LOCAL_RANK`` / ``_SIZE``
PMIx (Open MPI 5)     ``PMIX_RANK`` / ``PMIX_SIZE``            ``PMIX_LOCAL_RANK`` / ``PMIX_LOCAL_SIZE``
MPICH, Intel MPI      ``PMI_RANK`` / ``PMI_SIZE``              ``MPI_LOCALRANKID`` / ``MPI_LOCALNRANKS``
MVAPICH2              ``MV2_COMM_WORLD_RANK`` / ``_SIZE``      ``MV2_COMM_WORLD_LOCAL_RANK`` / ``_SIZE``
Slurm (srun)          ``SLURM_PROCID`` / ``SLURM_NTASKS``      ``SLURM_LOCALID`` / ``SLURM_NTASKS_PER_NODE``
Cray ALPS (aprun)     ``ALPS_APP_PE`` / ``ALPS_APP_SIZE``      —
====================  =======================================  ======================================

The first launcher whose rank variable is set wins. A plain process (no launcher) is rank 0 of 1.
``SLURM_PROCID`` counts only inside a job step (``SLURM_STEP_ID`` set): the batch script of an sbatch
job is not an MPI rank. Pilot 2's :func:`get_ranks_info` name is kept; it returns ``(None, None)``
outside MPI as Pilot 2 did (Pilot 2 imported mpi4py for this, which initialises MPI in the pilot).

Batch facts come from :mod:`pilot.util.batch` (:func:`batch_info`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

from pilot.util.batch import BatchInfo, batch_info, detect

#: launcher -> (rank, size, local rank, local size) variable names, in the order they are tried
LAUNCHERS = (
    ("openmpi", ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
                 "OMPI_COMM_WORLD_LOCAL_SIZE")),
    ("pmix", ("PMIX_RANK", "PMIX_SIZE", "PMIX_LOCAL_RANK", "PMIX_LOCAL_SIZE")),
    ("mpich", ("PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS")),
    ("mvapich2", ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_LOCAL_RANK",
                  "MV2_COMM_WORLD_LOCAL_SIZE")),
    ("slurm", ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE")),
    ("alps", ("ALPS_APP_PE", "ALPS_APP_SIZE", "", "")),
)


@dataclass(frozen=True)
class RankInfo:
    """This process's place in an MPI job."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    launcher: str = ""  # '' when not started by an MPI launcher

    @property
    def is_mpi(self) -> bool:
        return bool(self.launcher)

    @property
    def is_rank_zero(self) -> bool:
        return self.rank == 0


def _int(value: Optional[str], default: Optional[int] = None) -> Optional[int]:
    """The leading integer of a value (``SLURM_NTASKS_PER_NODE`` may read ``4(x2)``)."""
    if value is None:
        return default
    digits = ""
    for char in value.strip():
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else default


def rank_info(environ: Optional[Mapping[str, str]] = None) -> RankInfo:
    """Rank, size and node-local rank/size of this process from its launcher's variables."""
    env = os.environ if environ is None else environ
    for launcher, (rank_var, size_var, local_var, local_size_var) in LAUNCHERS:
        rank = _int(env.get(rank_var))
        if rank is None:
            continue
        if launcher == "slurm" and not env.get("SLURM_STEP_ID"):
            continue  # an sbatch script, not a task of srun
        size = _int(env.get(size_var)) or _int(env.get("SLURM_NPROCS" if launcher == "slurm" else "")) or 1
        local_rank = _int(env.get(local_var), rank) if local_var else rank
        local_size = _int(env.get(local_size_var), size) if local_size_var else size
        return RankInfo(rank=rank, size=max(size, rank + 1), local_rank=local_rank or 0,
                        local_size=max(local_size or 1, 1), launcher=launcher)
    return RankInfo()


def get_ranks_info(environ: Optional[Mapping[str, str]] = None) -> tuple:
    """Pilot 2 name: (rank, size) under an MPI launcher, else (None, None)."""
    info = rank_info(environ)
    return (info.rank, info.size) if info.is_mpi else (None, None)


def is_rank_zero(environ: Optional[Mapping[str, str]] = None) -> bool:
    """True for rank 0 (and for a process that is not part of an MPI job)."""
    return rank_info(environ).is_rank_zero


class Environment:
    """Facts about the place the pilot runs in: MPI rank, batch system, batch slot."""

    def __init__(self, environ: Optional[Mapping[str, str]] = None) -> None:
        self.environ = os.environ if environ is None else environ

    def rank(self) -> RankInfo:
        return rank_info(self.environ)

    def batch_system(self) -> tuple:
        """(batch system, batch job id)."""
        return detect(self.environ)

    def batch(self, started: Optional[float] = None) -> BatchInfo:
        """Batch system, job id and the end of the slot (asks the batch system)."""
        return batch_info(self.environ, started=started)


__all__ = ["RankInfo", "rank_info", "get_ranks_info", "is_rank_zero", "Environment", "LAUNCHERS"]
