"""OneBox background jobs end to end: a --background pilot asks for background work (both server
generations), gets only the job flagged background-capable, runs its payload at low CPU and I/O
priority and reports it in the job metrics."""

from __future__ import annotations

import shutil

import pytest

from pilot.devserver.samples import sample_job

PROBE = "echo NICE=$(nice); echo IOCLASS=$(ionice 2>&1 || echo none)"


def _job(devserver, background: bool) -> dict:
    job = sample_job(devserver.storage_dir)
    out = job["outFiles"].split(",")[0]
    job["jobPars"] = f"-c 'cat dev.input.*txt | wc -c > {out}; {PROBE}'"
    if background:
        job["_background"] = True
    return job


@pytest.mark.parametrize("api", ["legacy", "rest"])
def test_background_pilot_gets_flagged_job_and_runs_it_nice(devserver, start_pilot, api):
    normal = devserver.submit(_job(devserver, background=False))
    flagged = devserver.submit(_job(devserver, background=True))
    run = start_pilot(extra=["--background"], config_text=f"\n[Pilot]\nserver_api: {api}\nbackground_nice: 7\n")
    assert run.wait(120) == 0, run.log_text()[-3000:]
    assert devserver.wait_final(flagged, timeout=30)["state"] == "finished"
    assert devserver.job(normal)["state"] == "activated"  # never handed to a background request
    method = "acquire_jobs" if api == "rest" else "getJob"
    sent = [r["fields"] for r in devserver.requests(method)]
    assert sent, devserver.requests()
    assert all(f.get("background") in ("True", True) for f in sent)
    if api == "rest":
        assert all(f["background"] is True for f in sent)  # a JSON boolean, as the REST API types it
    metrics = devserver.final_update(flagged)["jobMetrics"]
    assert metrics["background"] == "1" and metrics["nice"] == "7"  # decoded key=value pairs
    stdout = next(run.main_dir().rglob("payload.stdout")).read_text()
    assert "NICE=7" in stdout  # the payload really runs with the niceness increment
    if shutil.which("ionice"):
        assert "IOCLASS=idle" in stdout
    assert "is a background (OneBox) job" in run.log_text()


def test_ordinary_pilot_leaves_background_jobs_alone(devserver, start_pilot):
    flagged = devserver.submit(_job(devserver, background=True))
    normal = devserver.submit(_job(devserver, background=False))
    run = start_pilot()
    assert run.wait(120) == 0, run.log_text()[-3000:]
    assert devserver.wait_final(normal, timeout=30)["state"] == "finished"
    assert devserver.job(flagged)["state"] == "activated"
    assert all("background" not in r["fields"] for r in devserver.requests("getJob"))
    metrics = devserver.final_update(normal)["jobMetrics"]
    assert "background" not in metrics
    stdout = next(run.main_dir().rglob("payload.stdout")).read_text()
    assert "NICE=0" in stdout
