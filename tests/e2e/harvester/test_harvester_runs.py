"""Whole pilot runs driven only through Harvester's files (PUSH and PULL), with Harvester's side played by the test."""

from __future__ import annotations

import json
import os
import signal
import zlib
from pathlib import Path

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job
from tests.harvester_side import HarvesterSide, wait_until
from tests.payload_procs import wait_gone

from .conftest import harvester_params, server_job_calls


def adler32(path: Path) -> str:
    return f"{zlib.adler32(Path(path).read_bytes()) & 0xffffffff:08x}"


def harvester_options(ap: Path, mode: str) -> list:
    return ["-z", "--harvester-workdir", str(ap), "--harvester-submit-mode", mode]


def check_outputs(side: HarvesterSide, pandaid: int, job: dict) -> dict:
    """The output list as Harvester reads it: the log and the output, with true sizes and checksums."""
    files = side.get_files_to_stage_out(pandaid)[pandaid]
    out_lfn = job["outFiles"].split(",")[0]
    assert set(files) == {out_lfn, job["logFile"]}
    for lfn, (entry,) in files.items():
        assert entry["type"] == ("log" if lfn == job["logFile"] else "output")
        assert os.path.isfile(entry["path"]) and os.path.basename(entry["path"]) == lfn
        assert entry["fsize"] == os.path.getsize(entry["path"])
        assert entry["chksum"] == adler32(entry["path"])
        assert entry["guid"]
    assert files[job["logFile"]][0]["guid"] == job["logGUID"]
    return files


def check_final_attributes(side: HarvesterSide, pandaid: int, state: str = "finished") -> dict:
    attrs = side.get_work_attributes(pandaid)
    assert attrs["jobStatus"] == state and attrs["state"] == state
    assert str(attrs["jobId"]) == str(pandaid)
    assert "xml" not in attrs and "pilotTiming" in attrs and "timestamp" in attrs
    return attrs


def test_push_mode_two_jobs_through_files(devserver, run_pilot, tmp_path):
    """PUSH: a pre-placed job, a second one fed on the pilot's request, then the pilot asks again and ends."""
    devserver.set_queuedata("DEV_QUEUE", {"timefloor": 10})
    ap = tmp_path / "ap"
    side = HarvesterSide(ap)
    report = {"exitCode": 0, "exitMsg": "OK", "executor": [{"name": "x", "logfileReport": {"big": [1, 2, 3]}}]}
    pars = (f"-c 'cat dev.input.*txt | wc -c > dev.output.txt && echo {json.dumps(json.dumps(report))[1:-1]}"
            " > jobReport.json'")
    job1 = sample_job(devserver.storage_dir, pandaid=5001)
    job1["jobPars"] = pars.replace("dev.output.txt", job1["outFiles"].split(",")[0])
    job2 = sample_job(devserver.storage_dir, pandaid=5002)
    side.feed_jobs([harvester_params(job1, 5001)])
    run = run_pilot(harvester_options(ap, "PUSH") + ["-x", "5"], workdir=ap)

    # job 1 ends: Harvester finds its output list and final attributes, and a request for the next job
    wait_until(lambda: side.job_requested(), timeout=90)
    check_final_attributes(side, 5001)
    check_outputs(side, 5001, job1)
    assert side.get_work_attributes(5001)["metaData"]["executor"][0]["logfileReport"] == {}
    assert not (ap / "event_status.dump.json").exists() and (ap / "event_status.dump.json.read").exists()
    side.acknowledge_events_files(5001)
    assert side.job_requested() == 1

    side.feed_jobs([harvester_params(job2, 5002)], fmt="cgi")
    assert run.wait(120) == 0, run.log_text()[-4000:]
    check_final_attributes(side, 5002)
    assert "metaData" not in side.get_work_attributes(5002)  # job 1's report was not left for job 2
    check_outputs(side, 5002, job2)
    umask = os.umask(0)
    os.umask(umask)
    assert (ap / "worker_attributes.json").stat().st_mode & 0o777 == 0o666 & ~umask  # readable as usual
    assert side.kill_requested(), "no kill_worker.json at exit"
    assert side.is_alive(1)
    assert side.job_requested() == 1  # the third request that Harvester did not answer
    main = run.main_dir()
    assert (main / "pandaIDs.out").read_text().split() == ["5001", "5002"]
    assert not (ap / "pandaJobData.out").exists()  # consumed
    assert server_job_calls(devserver) == []
    assert not list(ap.glob("**/.tmp-*")), "a temporary file was left behind"


@pytest.mark.parametrize("spec_file", ["pandaJobData.out", "HPCJobs.json"])
def test_push_mode_multi_job_worker_subdirectories(devserver, run_pilot, tmp_path, spec_file):
    """Harvester feeds two jobs at once into <access point>/<PandaID>/ (listed in worker_pandaids.json, the
    multi-job and HPC form); each job's files go to its sub-directory."""
    devserver.set_queuedata("DEV_QUEUE", {"timefloor": 10})
    ap = tmp_path / "ap"
    side = HarvesterSide(ap, multi_jobs=True, job_spec_file=spec_file)
    jobs = {pid: sample_job(devserver.storage_dir, pandaid=pid) for pid in (6001, 6002)}
    side.feed_jobs([harvester_params(job, pid) for pid, job in jobs.items()])
    run = run_pilot(harvester_options(ap, "PUSH") + ["-x", "3"], workdir=ap)
    assert run.wait(120) == 0, run.log_text()[-4000:]
    for pid, job in jobs.items():
        check_final_attributes(side, pid)
        check_outputs(side, pid, job)
        assert not (ap / str(pid) / spec_file).exists()
    assert not (ap / "worker_attributes.json").exists(), "per-job files must go to the job's sub-directory"
    assert (run.main_dir() / "pandaIDs.out").read_text().split() == ["6001", "6002"]
    assert side.kill_requested()
    assert server_job_calls(devserver) == []


def test_pull_mode_preplaced_hpc_job_file(devserver, run_pilot, tmp_path):
    """PULL with the job in HPCJobs.json in the Harvester workdir: no server call, one job."""
    ap = tmp_path / "ap"
    side = HarvesterSide(ap, job_spec_file="HPCJobs.json")
    job = sample_job(devserver.storage_dir, pandaid=7001)
    side.feed_jobs([harvester_params(job, 7001)])
    launch = tmp_path / "launch"
    run = run_pilot(harvester_options(ap, "PULL"), workdir=launch)
    assert run.wait(120) == 0, run.log_text()[-4000:]
    check_final_attributes(side, 7001)
    check_outputs(side, 7001, job)
    assert side.kill_requested()
    assert server_job_calls(devserver) == []
    assert not (ap / "HPCJobs.json").exists()


def test_pull_mode_takes_the_job_from_the_server_and_reports_to_files(devserver, run_pilot, tmp_path):
    """PULL without a job file: the pilot asks the server, lists the PandaID for Harvester, reports to files."""
    ap = tmp_path / "ap"
    side = HarvesterSide(ap)
    job = sample_job(devserver.storage_dir)
    pandaid = devserver.submit(job)
    run = run_pilot(harvester_options(ap, "PULL") + ["-x", "1"], workdir=ap)
    assert run.wait(120) == 0, run.log_text()[-4000:]
    assert side.get_panda_ids() == [pandaid]
    check_final_attributes(side, pandaid)
    check_outputs(side, pandaid, job)
    calls = [r["method"] for r in server_job_calls(devserver)]
    assert calls == ["getJob"], calls  # the job came from the server, no update went there


def test_harvester_kills_the_worker(devserver, run_pilot, tmp_path):
    """Harvester kills a worker through the batch system: SIGTERM to the pilot; the final state is written."""
    ap = tmp_path / "ap"
    side = HarvesterSide(ap)
    job = sample_job(devserver.storage_dir, pandaid=8001,
                     overrides={"jobPars": "-c 'echo $$ > payload.pid; sleep 300'"})
    side.feed_jobs([harvester_params(job, 8001)])
    run = run_pilot(harvester_options(ap, "PUSH"), workdir=ap)
    wait_until(lambda: side.get_work_attributes(8001).get("jobStatus") == "running", timeout=60)
    pidfile = wait_until(lambda: next(iter(ap.glob("PanDA_Pilot2_*/PanDA_Pilot-8001/payload.pid")), None), 30)
    payload_pid = int(wait_until(lambda: pidfile.read_text().strip(), 10))
    os.kill(run.proc.pid, signal.SIGTERM)
    assert run.wait(60) == 143
    attrs = check_final_attributes(side, 8001, state="failed")
    assert int(attrs["pilotErrorCode"]) == ErrorCodes.SIGTERM
    files = side.get_files_to_stage_out(8001)[8001]
    assert list(files) == [job["logFile"]]  # the log still left; the output was never made
    assert side.kill_requested()
    assert wait_gone(payload_pid, environ=f"PILOT_JOB_WORKDIR={pidfile.parent}", timeout=5)  # its namespace's PID
    assert server_job_calls(devserver) == []
