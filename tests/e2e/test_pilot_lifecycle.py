"""Pilot-level behaviour: queue state, multi-job pilots, signals, HTTPS and the outbox."""

from __future__ import annotations

import json
import os
import signal

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job

from .conftest import wait_for_file


def test_queue_not_active_stops_with_1359(devserver, start_pilot):
    devserver.set_queuedata("DEV_QUEUE", {"state": "OFFLINE", "status": "offline"})
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    run = start_pilot()
    assert run.wait(60) == 78  # 1359 PANDAQUEUENOTACTIVE
    assert "1359" in run.log_text() or "not ACTIVE" in run.log_text()
    assert not devserver.requests("getJob")
    assert devserver.job(pandaid)["state"] == "activated"


def test_multi_job_pilot_runs_jobs_while_timefloor_allows(devserver, start_pilot):
    devserver.set_queuedata("DEV_QUEUE", {"timefloor": 10})  # minutes
    ids = [devserver.submit(sample_job(devserver.storage_dir)) for _ in range(3)]
    run = start_pilot(extra=["-v", "10"])
    assert run.wait(120) == 0
    for pandaid in ids:
        assert devserver.wait_final(pandaid, timeout=30)["state"] == "finished"
    main = run.main_dir()
    assert (main / "pandaIDs.out").read_text().split() == [str(i) for i in ids]
    timing = json.loads((main / "pilot_timing.json").read_text())
    assert set(timing) == {str(i) for i in ids}


def test_getjob_request_budget_limits_jobs(devserver, start_pilot):
    devserver.set_queuedata("DEV_QUEUE", {"timefloor": 10})
    ids = [devserver.submit(sample_job(devserver.storage_dir)) for _ in range(3)]
    run = start_pilot(extra=["-v", "2"])
    run.wait(120)
    states = [devserver.job(i)["state"] for i in ids]
    assert states.count("finished") == 2 and states[2] == "activated"


@pytest.mark.parametrize("sig,code,status", [
    (signal.SIGUSR1, ErrorCodes.SIGUSR1, 144),
    (signal.SIGQUIT, ErrorCodes.SIGQUIT, 131),
    (signal.SIGINT, ErrorCodes.KILLSIGNAL, 130),  # Ctrl-C: 1200 to the server as in Pilot 2, 130 to the shell
])
def test_signals_abort_with_their_code(devserver, start_pilot, sig, code, status):
    job = sample_job(devserver.storage_dir, overrides={"jobPars": "-c 'touch started; sleep 300'"})
    pandaid = devserver.submit(job)
    run = start_pilot()
    devserver.wait_state(pandaid, "running", timeout=30)
    assert wait_for_file(run.main_dir() / f"PanDA_Pilot-{pandaid}" / "started", 30)
    os.kill(run.proc.pid, sig)
    assert run.wait(60) == status
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed" and int(final["pilotErrorCode"]) == code


def test_job_over_https_with_cacert(devserver, start_pilot):
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    run = start_pilot(https=True, extra=["--cacert", str(devserver.cacert)])
    assert run.wait(60) == 0
    assert devserver.wait_final(pandaid, timeout=30)["state"] == "finished"


def test_undelivered_final_update_is_sent_by_the_next_pilot(devserver, start_pilot, tmp_path):
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    # every updateJob after the first two heartbeats fails: the final update cannot be delivered
    devserver.inject(method="updateJob", action="status", status=503, after=2, count=1000)
    workdir = tmp_path / "site"
    run = start_pilot(workdir=workdir)
    run.wait(120)
    assert devserver.job(pandaid)["state"] not in ("finished", "failed")
    outbox = list((workdir / "pilot_outbox").glob("*.final.json"))
    assert [p.name for p in outbox] == [f"{pandaid}.final.json"]
    devserver.clear_injections()
    second = start_pilot(workdir=workdir)
    second.wait(60)
    assert devserver.wait_final(pandaid, timeout=30)["state"] == "finished"
    assert not list((workdir / "pilot_outbox").glob("*.final.json"))


@pytest.mark.parametrize("content,status", [
    ("this is not JSON", 71),                              # 1116 QUEUEDATA
    ('{"DEV_QUEUE": {"state": "ACTIVE"}}', 72),            # 1117 QUEUEDATANOTOK: no nickname
    ('{"DEV_QUEUE": {"nickname": "DEV_QUEUE", "state": "ACTIVE", "copytools": 5}}', 1),  # 1341
])
def test_bad_queuedata_stops_with_its_code(devserver, start_pilot, tmp_path, content, status):
    bad = tmp_path / "queuedata.json"
    bad.write_text(content)
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    run = start_pilot(extra=["--queuedata-url", f"file://{bad}"])
    assert run.wait(60) == status, run.log_text()[-2000:]
    assert devserver.job(pandaid)["state"] == "activated"
