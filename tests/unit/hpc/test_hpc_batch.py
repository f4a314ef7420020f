"""pilot.util.batch: batch system and job id from the environment, end of the slot, the lifetime cut."""

import time
from datetime import datetime

import pytest

from pilot.control.monitoring.lifetime import slot_limited
from pilot.util import batch
from pilot.util.processes import CommandResult
from pilot.workflow.generic import pilot_id


@pytest.mark.parametrize("env, expected", [
    ({"SLURM_JOB_ID": "4711"}, ("SLURM", "4711")),
    ({"SLURM_JOB_ID": "4712", "SLURM_ARRAY_JOB_ID": "4700", "SLURM_ARRAY_TASK_ID": "12"}, ("SLURM", "4700_12")),
    ({"PBS_JOBID": "123.pbs.example.org"}, ("Torque", "123.pbs.example.org")),
    ({"LSB_JOBID": "99"}, ("LSF", "99")),
    ({"LSB_JOBID": "99", "LSB_JOBINDEX": "3"}, ("LSF", "99[3]")),
    ({"QSUB_REQNAME": "req1"}, ("BQS", "req1")),
    ({"K8S_JOB_ID": "pod-1"}, ("Kubernetes", "pod-1")),
    ({"JOB_ID": "77", "SGE_ROOT": "/opt/sge"}, ("Grid Engine", "77")),
    ({"JOB_ID": "77"}, ("", "")),  # JOB_ID alone is too common a name
    ({"clusterid": "555"}, ("Condor", "555")),
    ({}, ("", "")),
])
def test_detect(env, expected):
    assert batch.detect(env) == expected


def test_condor_job_and_machine_ads(tmp_path):
    job_ad = tmp_path / "job.ad"
    job_ad.write_text('ClusterId = 123\nProcId = 4\nGlobalJobId = "schedd.example.org#123.4#1700000000"\n'
                      "JobCurrentStartDate = 1700000100\nMaxWallTimeMins = 60\nOwner = \"pilot\"\n")
    machine_ad = tmp_path / "machine.ad"
    machine_ad.write_text("GLIDEIN_ToDie = 1700003000\nCpus = 8\n")
    env = {"_CONDOR_JOB_AD": str(job_ad), "_CONDOR_MACHINE_AD": str(machine_ad)}
    assert batch.detect(env) == ("Condor", "schedd.example.org#123.4#1700000000")
    # the job ad says 1700000100 + 3600 = 1700003700; the glidein dies earlier, at 1700003000
    assert batch.condor_end_time(env) == (1700003000.0, "machine ad GLIDEIN_ToDie")
    machine_ad.write_text("GLIDEIN_ToDie = 1700009000\n")
    assert batch.condor_end_time(env) == (1700003700.0, "job ad MaxWallTimeMins")
    assert batch.condor_end_time({}) == (None, "")
    # no GlobalJobId: ClusterId.ProcId
    job_ad.write_text("ClusterId = 123\nProcId = 4\n")
    assert batch.detect({"_CONDOR_JOB_AD": str(job_ad)}) == ("Condor", "123.4")


def test_parsers():
    assert batch.parse_slurm_time("2026-11-22T03:45:49") == datetime(2026, 11, 22, 3, 45, 49).timestamp()
    assert batch.parse_slurm_time("Unknown") is None and batch.parse_slurm_time("N/A") is None
    assert batch.parse_duration("90") == 90
    assert batch.parse_duration("01:30") == 90
    assert batch.parse_duration("02:00:05") == 7205
    assert batch.parse_duration("1-00:00:01") == 86401
    assert batch.parse_duration("soon") is None and batch.parse_duration("") is None


def fake_runner(answers):
    """A run_command stand-in: command name -> CommandResult (or missing: command failed)."""
    calls = []

    def run(cmd, timeout=None):
        calls.append(cmd)
        return answers.get(cmd[0], CommandResult(1, "", "no such job"))

    run.calls = calls
    return run


def test_slurm_end_time_from_squeue_then_scontrol(monkeypatch):
    monkeypatch.setattr(batch.shutil, "which", lambda name: "/usr/bin/" + name)
    run = fake_runner({"squeue": CommandResult(0, "2030-01-02T03:04:05\n", "")})
    end, source = batch.slurm_end_time("42", run)
    assert (end, source) == (datetime(2030, 1, 2, 3, 4, 5).timestamp(), "squeue")
    assert run.calls[0] == ["squeue", "-h", "-j", "42", "-o", "%e"]
    text = "JobId=42 JobName=pilot\n   StartTime=2030-01-02T02:04:05 EndTime=2030-01-02T03:04:05 Deadline=N/A\n"
    run = fake_runner({"squeue": CommandResult(0, "Unknown\n", ""), "scontrol": CommandResult(0, text, "")})
    assert batch.slurm_end_time("42", run) == (datetime(2030, 1, 2, 3, 4, 5).timestamp(), "scontrol")
    assert batch.slurm_end_time("42", fake_runner({})) == (None, "")


def test_pbs_and_lsf_end_times(monkeypatch):
    monkeypatch.setattr(batch.shutil, "which", lambda name: "/usr/bin/" + name)
    now = 1_800_000_000.0
    qstat = "Job Id: 1.pbs\n    Walltime.Remaining = 3600\n    resources_used.walltime = 00:10:00\n"
    run = fake_runner({"qstat": CommandResult(0, qstat, "")})
    assert batch.pbs_end_time("1.pbs", {}, runner=run, now=now) == (now + 3600, "qstat Walltime.Remaining")
    # no qstat answer: PBS_WALLTIME counted from the pilot's start
    assert batch.pbs_end_time("1.pbs", {"PBS_WALLTIME": "7200"}, started=now, runner=fake_runner({}),
                              now=now) == (now + 7200, "PBS_WALLTIME")
    run = fake_runner({"bjobs": CommandResult(0, "1:30 L\n", "")})
    assert batch.lsf_end_time("99", run, now=now) == (now + 5400, "bjobs time_left")


def test_batch_info_and_remaining(monkeypatch):
    monkeypatch.setattr(batch.shutil, "which", lambda name: "/usr/bin/" + name)
    end = time.time() + 600
    stamp = datetime.fromtimestamp(end).strftime("%Y-%m-%dT%H:%M:%S")
    run = fake_runner({"squeue": CommandResult(0, stamp + "\n", "")})
    info = batch.batch_info({"SLURM_JOB_ID": "7"}, runner=run)
    assert info.system == "SLURM" and info.job_id == "7" and info.source == "squeue"
    assert 590 <= info.remaining() <= 600
    assert batch.remaining_seconds({}, runner=run) is None  # no batch system: no limit


def test_slot_limited_lifetime():
    start = 1000.0
    # 100 s into the pilot, 200 s left in the slot: the pilot lifetime is 300 s, not 3600 s
    assert slot_limited(3600, start, remaining=lambda: 200.0, now=1100.0) == pytest.approx(300.0)
    assert slot_limited(250, start, remaining=lambda: 200.0, now=1100.0) == 250  # -l is shorter
    assert slot_limited(3600, start, remaining=lambda: None, now=1100.0) == 3600  # no batch limit known
    assert slot_limited(0, start, remaining=lambda: 50.0, now=1000.0) == pytest.approx(50.0)


def test_pilot_id_and_batch_id_fields(monkeypatch):
    for name in ("_CONDOR_JOB_AD", "PBS_JOBID", "LSB_JOBID", "clusterid", "CONDOR_JOB_ID", "QSUB_REQNAME",
                 "BQSCLUSTER", "K8S_JOB_ID", "SLURM_ARRAY_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "31337")
    monkeypatch.setenv("GTAG", "http://example.org/pilot.log")
    from pilot.util.workernode import collect

    node = collect()
    assert (node.batch_system, node.batch_job_id) == ("SLURM", "31337")

    class Args:
        version_tag = "PR"

    assert pilot_id(Args(), node).split("|")[:3] == ["http://example.org/pilot.log", "SLURM", "PR"]
