"""pilot.api.environment: MPI rank and size from the launchers' variables."""

import pytest

from pilot.api.environment import Environment, RankInfo, get_ranks_info, is_rank_zero, rank_info


@pytest.mark.parametrize("env, expected", [
    ({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "0",
      "OMPI_COMM_WORLD_LOCAL_SIZE": "2", "PMIX_RANK": "2"}, RankInfo(2, 4, 0, 2, "openmpi")),
    ({"PMIX_RANK": "5", "PMIX_SIZE": "8"}, RankInfo(5, 8, 5, 8, "pmix")),
    ({"PMI_RANK": "1", "PMI_SIZE": "3", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "3"},
     RankInfo(1, 3, 1, 3, "mpich")),
    ({"MV2_COMM_WORLD_RANK": "0", "MV2_COMM_WORLD_SIZE": "2"}, RankInfo(0, 2, 0, 2, "mvapich2")),
    ({"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1", "SLURM_NTASKS_PER_NODE": "2(x2)",
      "SLURM_STEP_ID": "0", "SLURM_JOB_ID": "9"}, RankInfo(3, 4, 1, 2, "slurm")),
    ({"SLURM_PROCID": "0", "SLURM_JOB_ID": "9"}, RankInfo()),  # an sbatch script is not an MPI rank
    ({"ALPS_APP_PE": "7", "ALPS_APP_SIZE": "16"}, RankInfo(7, 16, 7, 16, "alps")),
    ({}, RankInfo()),
])
def test_rank_info(env, expected):
    assert rank_info(env) == expected


def test_inconsistent_size_is_repaired_and_helpers():
    info = rank_info({"PMI_RANK": "4"})  # no size: at least rank + 1
    assert info.rank == 4 and info.size == 5 and info.is_mpi and not info.is_rank_zero
    assert get_ranks_info({"PMI_RANK": "1", "PMI_SIZE": "2"}) == (1, 2)
    assert get_ranks_info({}) == (None, None)  # Pilot 2's answer outside MPI
    assert is_rank_zero({}) and is_rank_zero({"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2"})
    assert not is_rank_zero({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"})
    environment = Environment({"LSB_JOBID": "12", "PMI_RANK": "0", "PMI_SIZE": "2"})
    assert environment.batch_system() == ("LSF", "12")
    assert environment.rank() == RankInfo(0, 2, 0, 2, "mpich")
