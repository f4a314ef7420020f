"""Nothing lost after the payload: a killed pilot or a failed stage-out is finished by the next pilot."""

from __future__ import annotations

import copy
import json
import os
import signal
import urllib.request
from pathlib import Path

from pilot.devserver.samples import sample_job, storage_path

# The tests hold the pilot inside stage-out by delaying its Rucio trace POST. mv sends no trace (the CE moves
# its files), so outputs and log go with lsm (the stub commands copy to the same LOCAL_DISK paths), which does.
LSM_STUBS = Path(__file__).resolve().parents[1] / "integration" / "data" / "lsm_stubs"


def traced_stageout(devserver) -> dict:
    """Outputs and log by lsm; returns the environment the pilots need (the stubs first on PATH)."""
    devserver.set_queuedata("DEV_QUEUE", {
        "copytools": {"mv": {"setup": ""}, "lsm": {"setup": ""}},
        "acopytools": {"pr": ["mv"], "pw": ["lsm"], "pl": ["lsm"], "pls": ["lsm"]},
    })
    return {"PATH": f"{LSM_STUBS}{os.pathsep}{os.environ.get('PATH', '')}"}


def _storagedata(server) -> dict:
    with urllib.request.urlopen(f"{server.url}/storagedata.json", timeout=10) as resp:
        return json.loads(resp.read())


def test_sigkill_mid_stageout_then_next_pilot_finishes(devserver, start_pilot, tmp_path):
    job = sample_job(devserver.storage_dir)
    pandaid = devserver.submit(job)
    env = traced_stageout(devserver)
    # the job's one trace POST (sent at the end of its stage-out) hangs, so the pilot is inside
    # stage-out, with its recovery record written, when it is killed
    rule = devserver.inject(method="traces", action="delay", delay=60, count=1)
    site = tmp_path / "site"
    first = start_pilot(workdir=site, env=env)
    record = site / "pilot_recovery" / f"{pandaid}.json"
    deadline = 30
    import time

    def trace_hanging() -> bool:
        return any(r["id"] == rule["id"] and r["applied"] for r in devserver.injections())

    end = time.monotonic() + deadline
    while time.monotonic() < end and not (record.exists() and trace_hanging()):
        time.sleep(0.05)
    assert record.exists(), first.log_text()[-2000:]
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.proc.wait()
    assert devserver.job(pandaid)["state"] == "running"
    devserver.clear_injections()

    second = start_pilot(workdir=site, env=env)
    assert second.wait(60) == 0
    final = devserver.wait_final(pandaid, timeout=30)
    assert final["state"] == "finished", second.log_text()[-3000:]
    assert "recovering job" in second.log_text()
    raw = devserver.updates(pandaid)[-1]["fields"]
    xml = json.loads(raw["xml"])
    out = job["outFiles"].split(",")[0]
    assert set(xml) == {out, job["logFile"]}
    assert storage_path(devserver.storage_dir, job["scopeOut"].split(",")[0], out).exists()
    assert not record.exists()
    # exactly one final state on the server
    finals = [u for u in devserver.updates(pandaid) if u["fields"]["state"] in ("finished", "failed")]
    assert len(finals) == 1


def test_transient_stageout_failure_holds_then_recovers(devserver, start_pilot, tmp_path):
    original = _storagedata(devserver)
    broken = copy.deepcopy(original["LOCAL_DISK"])
    for activity, protocols in broken.get("arprotocols", {}).items():
        if activity.startswith("write") or activity in ("pw", "pl", "w"):
            for proto in protocols:
                proto["path"] = "/dev/null/not-a-directory"
    devserver.set_storagedata("LOCAL_DISK", broken, merge=False)
    job = sample_job(devserver.storage_dir)
    pandaid = devserver.submit(job)
    site = tmp_path / "site"
    first = start_pilot(workdir=site)
    first.wait(60)
    states = [u["fields"]["state"] for u in devserver.updates(pandaid)]
    assert states[-1] == "holding", first.log_text()[-3000:]
    assert (site / "pilot_recovery" / f"{pandaid}.json").exists()

    devserver.set_storagedata("LOCAL_DISK", original["LOCAL_DISK"], merge=False)
    second = start_pilot(workdir=site)
    second.wait(60)
    final = devserver.wait_final(pandaid, timeout=30)
    assert final["state"] == "finished", second.log_text()[-3000:]
    out = job["outFiles"].split(",")[0]
    assert storage_path(devserver.storage_dir, job["scopeOut"].split(",")[0], out).exists()
    assert not (site / "pilot_recovery" / f"{pandaid}.json").exists()


def test_sigterm_mid_stageout_finishes_the_job(devserver, start_pilot, tmp_path):
    job = sample_job(devserver.storage_dir)
    pandaid = devserver.submit(job)
    env = traced_stageout(devserver)
    devserver.inject(method="traces", action="delay", delay=3, after=1, count=1)
    site = tmp_path / "site"
    run = start_pilot(workdir=site, env=env)
    record = site / "pilot_recovery" / f"{pandaid}.json"
    import time

    end = time.monotonic() + 30
    while time.monotonic() < end and not record.exists():
        time.sleep(0.05)
    os.kill(run.proc.pid, signal.SIGTERM)
    run.wait(60)
    final = devserver.wait_final(pandaid, timeout=30)
    # the payload had succeeded: a stop request during stage-out does not throw its outputs away
    assert final["state"] == "finished", run.log_text()[-3000:]
    assert Path(storage_path(devserver.storage_dir, job["scopeLog"], job["logFile"])).exists()
