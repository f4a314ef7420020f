"""Every ``-w`` choice runs its workflow (real pilot processes against the dev server), never a traceback."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pilot.devserver.samples import sample_job
from pilot.util.parameters import WORKFLOWS
from tests.e2e.conftest import REPO, TEST_CONFIG
from tests.hpcsite import make_access_point, pilot_args


def test_every_choice_has_a_workflow_module():
    for name in WORKFLOWS:
        module = importlib.import_module(f"pilot.workflow.{name}")
        assert callable(module.run) and "args" in inspect.signature(module.run).parameters, name


@pytest.mark.parametrize("workflow, job_type", [("production", "managed"), ("analysis", "user")])
def test_production_and_analysis_select_the_payload_kind(devserver, start_pilot, workflow, job_type):
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    run = start_pilot(extra=["-w", workflow])
    assert run.wait(120) == 0, run.log_text()[-3000:]
    assert devserver.wait_final(pandaid, timeout=30)["state"] == "finished"
    fields = devserver.requests("getJob")[0]["fields"]
    assert fields["jobType"] == job_type
    assert "Traceback" not in run.log_text()


def test_explicit_job_type_wins(devserver, start_pilot):
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    run = start_pilot(extra=["-w", "analysis", "--job-type", "managed"])
    assert run.wait(120) == 0, run.log_text()[-3000:]
    assert devserver.wait_final(pandaid, timeout=30)["state"] == "finished"
    assert devserver.requests("getJob")[0]["fields"]["jobType"] == "managed"


@pytest.mark.parametrize("stager", ["stager", "stagein"])
def test_split_workflow_stager_then_payload_stageout(devserver, start_pilot, tmp_path, stager):
    job = sample_job(devserver.storage_dir)
    pandaid = devserver.submit(job)
    handover = tmp_path / "handover"
    first = start_pilot(extra=["-w", stager, "--input-destination-dir", str(handover)])
    assert first.wait(120) == 0, first.log_text()[-3000:]
    assert "handed over in" in first.log_text()
    lfn = job["inFiles"].split(",")[0]
    assert (handover / lfn).stat().st_size == int(job["fsize"].split(",")[0])
    updates = devserver.updates(pandaid)
    assert updates and updates[-1]["fields"]["state"] == "running"
    assert devserver.final_update(pandaid) is None  # the job is left to the payload pilot
    # Harvester places the same job for the payload pilot (pre-placed definition in its launch dir)
    second_dir = tmp_path / "payload_pilot"
    second_dir.mkdir()
    (second_dir / "pandaJobData.out").write_text(json.dumps({str(pandaid): job}))
    second = start_pilot(extra=["-w", "payload_stageout", "--input-dir", str(handover)], workdir=second_dir)
    assert second.wait(120) == 0, second.log_text()[-3000:]
    record = devserver.wait_final(pandaid, timeout=30)
    assert record["state"] == "finished", record["final_update"]
    assert "input(s) taken from" in second.log_text()
    assert devserver.requests("getJob") and len(devserver.requests("getJob")) == 1  # only the stager asked


def test_payload_stageout_without_handed_over_inputs(devserver, start_pilot, tmp_path):
    job = sample_job(devserver.storage_dir)
    pandaid = devserver.submit(job)
    empty = tmp_path / "empty"
    empty.mkdir()
    run = start_pilot(extra=["-w", "payload_stageout", "--input-dir", str(empty)])
    run.wait(120)
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert int(final["pilotErrorCode"]) == 1331, final
    assert "not handed over" in final["pilotErrorDiag"]


def test_eventservice_hpc_runs_the_hpc_workflow(tmp_path):
    site = make_access_point(tmp_path, 1)
    cfg = tmp_path / "hpc.cfg"
    cfg.write_text(TEST_CONFIG + "\n[HPC]\nrank0_services: False\n")
    work = tmp_path / "work"
    work.mkdir()
    cmd = [a if a != "generic_hpc" else "eventservice_hpc" for a in pilot_args(site, work, cfg)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=work,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})
    logs = "\n".join(p.read_text() for p in Path(work).glob("PanDA_Pilot2_*/pilotlog.txt"))
    assert result.returncode == 0, result.stderr[-3000:] + logs[-3000:]
    pandaid = site["pandaids"][0]
    attributes = json.loads((site["access"] / pandaid / "worker_attributes.json").read_text())
    assert attributes["jobStatus"] == "finished", attributes
    assert "Traceback" not in result.stderr


def test_unknown_workflow_is_a_usage_error():
    result = subprocess.run([sys.executable, str(REPO / "pilot.py"), "-q", "Q", "-w", "eventservice"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "invalid choice" in result.stderr and "Traceback" not in result.stderr
