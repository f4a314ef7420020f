"""MPI for real: Debian's Open MPI launches 2 to 4 ranks on this machine.

- every rank's own idea of its rank and size (pilot.api.environment) agrees with mpi4py's COMM_WORLD;
- the HPC workflow (``-w generic_hpc``) runs one job per rank from Harvester's files, rank 0 runs the
  memory monitor and the benchmark beside its payload and leaves their results in the access point;
- a failing payload and a rank without a job (both crashed Pilot 2) end with coded reports.
"""

import json
import os
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.hpcsite import REPO, make_access_point, pilot_args, require

MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe"]

CROSS_CHECK = """
import json, sys
sys.path.insert(0, sys.argv[1])
from mpi4py import MPI
from pilot.api.environment import rank_info
info = rank_info()
comm = MPI.COMM_WORLD
with open(f"{sys.argv[2]}/rank{comm.Get_rank()}.json", "w") as out:  # one file per rank: no interleaving
    json.dump({"mpi4py": [comm.Get_rank(), comm.Get_size()], "pilot": [info.rank, info.size, info.launcher],
               "local": [info.local_rank, info.local_size]}, out)
"""

TEST_CONFIG = """
[Pilot]
memory_monitor_interval: 0.5
lifetime_safety_margin: 20
[Benchmark]
duration: 1
url: {url}
"""


@pytest.fixture(autouse=True)
def tools():
    require("mpirun", python_module="mpi4py")


def mpirun(n: int, cmd: list, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("SLURM_JOB_ID", None)
    return subprocess.run(MPIRUN + ["-np", str(n)] + cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          start_new_session=True)


@pytest.mark.parametrize("ranks", [2, 4])
def test_rank_detection_agrees_with_mpi4py(ranks, tmp_path):
    result = mpirun(ranks, ["/usr/bin/python3", "-c", CROSS_CHECK, str(REPO), str(tmp_path)], timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("rank*.json"))]
    assert len(lines) == ranks
    for line in lines:
        assert line["pilot"][:2] == line["mpi4py"] and line["pilot"][2] == "openmpi"
        assert line["local"] == [line["mpi4py"][0], ranks]  # one node
    assert sorted(line["mpi4py"][0] for line in lines) == list(range(ranks))


def adler32(path: Path) -> str:
    return f"{zlib.adler32(path.read_bytes()) & 0xFFFFFFFF:08x}"


def run_hpc(tmp_path: Path, ranks: int, jobs: int, payload: str, sink_url: str = "") -> tuple:
    site = make_access_point(tmp_path, jobs, payload=payload)
    cfg = tmp_path / "hpc.cfg"
    cfg.write_text(TEST_CONFIG.format(url=sink_url))
    work = tmp_path / "work"
    work.mkdir()
    result = mpirun(ranks, pilot_args(site, work, cfg))
    return site, result


def test_generic_hpc_four_ranks_four_jobs(tmp_path):
    from pilot.devserver.control import DevServer

    with DevServer(tmp_path / "server", https=False) as server:
        payload = "python3 -c \"b = bytearray(30 << 20); import time; time.sleep(3)\"; echo done"
        site, result = run_hpc(tmp_path, 4, 4, payload, sink_url=f"{server.url}/sink/benchmarks")
        posted = server.sink("benchmarks")
    logs = "\n".join(p.read_text() for p in (tmp_path / "work").glob("PanDA_Pilot2_*/pilotlog.txt"))
    assert result.returncode == 0, result.stderr[-3000:] + logs[-3000:]
    access = site["access"]
    for rank, pandaid in enumerate(site["pandaids"]):
        job_dir = access / pandaid
        attributes = json.loads((job_dir / "worker_attributes.json").read_text())
        assert attributes["jobStatus"] == "finished" and attributes["pilotErrorCode"] == 0
        assert attributes["mpiRank"] == rank and attributes["jobId"] == pandaid
        status = json.loads((job_dir / "event_status.dump.json").read_text())[pandaid]
        kinds = {entry["type"] for entry in status}
        assert kinds == {"output", "log"}  # Harvester's key is 'type' (Pilot 2 wrote 'filetype')
        for entry in status:
            assert Path(entry["path"]).parent == job_dir and entry["fsize"] == Path(entry["path"]).stat().st_size
            assert entry["chksum"] == adler32(Path(entry["path"]))
    # rank 0's services: the memory monitor on its payload (a 30 MB bytearray) and the benchmark
    rank0 = access / site["pandaids"][0]
    attributes = json.loads((rank0 / "worker_attributes.json").read_text())
    assert attributes["maxRSS"] > 25 * 1024 and "avgPSS" in attributes
    assert (rank0 / "memory_monitor_output.txt").read_text().startswith("Time\tnprocs")
    assert json.loads((rank0 / "memory_monitor_summary.json").read_text())["Max"]["rss"] == attributes["maxRSS"]
    for other in site["pandaids"][1:]:
        assert not (access / other / "memory_monitor_summary.json").exists()
        assert "maxRSS" not in json.loads((access / other / "worker_attributes.json").read_text())
    bench = json.loads((access / "benchmark_results.json").read_text())
    assert bench["ncores"] == 1 and bench["valid"] and bench["PandaID"] == site["pandaids"][0]
    assert [doc["body"] for doc in posted] == [bench]


def test_generic_hpc_failed_payload_and_rank_without_job(tmp_path):
    # three ranks, two jobs: rank 2 has no job; both payloads exit 3 (no output file is produced)
    site = make_access_point(tmp_path, 2, payload="exit 3")
    for pandaid in site["pandaids"]:
        path = site["access"] / pandaid / "HPCJobs.json"
        jobs = json.loads(path.read_text())
        jobs[pandaid]["jobPars"] = "-c 'echo failing; exit 3'"
        path.write_text(json.dumps(jobs))
    cfg = tmp_path / "hpc.cfg"
    cfg.write_text("[HPC]\nrank0_services: False\n")
    work = tmp_path / "work"
    work.mkdir()
    result = mpirun(3, pilot_args(site, work, cfg))
    assert result.returncode != 0  # mpirun reports the failed ranks
    logs = "\n".join(p.read_text() for p in work.glob("PanDA_Pilot2_*/pilotlog.txt"))
    assert "rank 2 has no job: nothing to do" in logs
    for pandaid in site["pandaids"]:
        job_dir = site["access"] / pandaid
        attributes = json.loads((job_dir / "worker_attributes.json").read_text())
        assert attributes["jobStatus"] == "failed" and attributes["pilotErrorCode"] == 1305
        assert attributes["transExitCode"] == 3
        status = json.loads((job_dir / "event_status.dump.json").read_text())[pandaid]
        assert [entry["type"] for entry in status] == ["log"]  # the log still goes out
    assert not (site["access"] / "benchmark_results.json").exists()


def test_generic_hpc_without_job_list(tmp_path):
    site = make_access_point(tmp_path, 1)
    (site["access"] / "worker_pandaids.json").unlink()
    (site["access"] / site["pandaids"][0] / "HPCJobs.json").unlink()
    cfg = tmp_path / "hpc.cfg"
    cfg.write_text("")
    work = tmp_path / "work"
    work.mkdir()
    result = mpirun(2, pilot_args(site, work, cfg))
    assert result.returncode == 0, result.stderr[-2000:]  # nothing to run is not a crash
    logs = "\n".join(p.read_text() for p in work.glob("PanDA_Pilot2_*/pilotlog.txt"))
    assert logs.count("has no job: nothing to do") == 2
