"""The same job end to end against the dev server in the legacy protocol, the REST protocol, and with fallback."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from pilot.devserver.samples import sample_job

REST = "\n[Pilot]\nserver_api: rest\n"
LEGACY = "\n[Pilot]\nserver_api: legacy\n"


def methods(devserver) -> list:
    return [r["method"] for r in devserver.requests()
            if r["method"] in ("getJob", "updateJob", "acquire_jobs", "update_job")]


def check_finished(devserver, job, pandaid, run):
    record = devserver.wait_final(pandaid, timeout=60)
    assert record["state"] == "finished", run.log_text()[-3000:]
    final = record["final_update"]
    assert int(final["pilotErrorCode"]) == 0
    out_lfn = job["outFiles"].split(",")[0]
    assert set(final["xml"]) == {out_lfn, job["logFile"]}
    return record


def test_legacy_protocol(devserver, run_pilot):
    job = sample_job(devserver.storage_dir)
    pandaid = devserver.submit(job)
    run = run_pilot(["-x", "1"], config_text=LEGACY)
    assert run.wait(120) == 0, run.log_text()[-3000:]
    check_finished(devserver, job, pandaid, run)
    called = methods(devserver)
    assert "getJob" in called and "updateJob" in called
    assert "acquire_jobs" not in called and "update_job" not in called


def test_rest_protocol(devserver, run_pilot):
    job = sample_job(devserver.storage_dir)
    pandaid = devserver.submit(job)
    run = run_pilot(["-x", "1"], config_text=REST)
    assert run.wait(120) == 0, run.log_text()[-3000:]
    check_finished(devserver, job, pandaid, run)
    called = methods(devserver)
    assert "getJob" not in called and "updateJob" not in called
    assert called[0] == "acquire_jobs" and "update_job" in called
    acquire = devserver.requests("acquire_jobs")[0]["fields"]
    assert acquire["site_name"] == "DEV_QUEUE" and isinstance(acquire["disk_space"], int)
    assert isinstance(acquire["memory"], int) and acquire["n_jobs"] == 1
    updates = devserver.requests("update_job")
    states = [u["fields"]["job_status"] for u in updates]
    assert states[0] == "starting" and "running" in states and states[-1] == "finished"
    final = updates[-1]["fields"]
    assert final["job_id"] == pandaid and isinstance(final["pilot_error_code"], int)
    assert isinstance(final["cpu_conversion_factor"], float)
    assert set(json.loads(final["job_output_report"])) == {job["outFiles"].split(",")[0], job["logFile"]}
    for key in ("start_time", "end_time"):
        datetime.strptime(final[key], "%Y-%m-%d %H:%M:%S")  # the REST time format, in UTC
    assert "timestamp" not in final and "jobId" not in final
    # every REST call was accepted (the dev server checks names and types like panda-server)
    assert all(r["http_status"] == 200 for r in devserver.requests("update_job"))


@pytest.mark.parametrize("first, switched_off, refused, used", [
    ("legacy", "legacy_api", "getJob", ("acquire_jobs", "update_job")),
    ("rest", "rest_api", "acquire_jobs", ("getJob", "updateJob")),
])
def test_fallback_to_the_other_protocol(devserver, run_pilot, first, switched_off, refused, used):
    """A server of the other generation refuses the first call; the pilot switches and stays switched."""
    devserver.set_settings(**{switched_off: False})
    job = sample_job(devserver.storage_dir)
    pandaid = devserver.submit(job)
    run = run_pilot(["-x", "1"], config_text=f"\n[Pilot]\nserver_api: {first}\n")
    assert run.wait(120) == 0, run.log_text()[-3000:]
    check_finished(devserver, job, pandaid, run)
    called = methods(devserver)
    assert called[0] == refused and devserver.requests(refused)[0]["http_status"] in (403, 404)
    assert called.count(refused) == 1, called
    assert used[0] in called and used[1] in called
    assert "switch" in run.log_text() or "using it from now on" in run.log_text()
