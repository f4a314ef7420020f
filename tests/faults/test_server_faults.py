"""Server faults: errors, time-outs, dropped connections, malformed and partial replies, a long outage."""

from __future__ import annotations

import threading

import pytest

from pilot.devserver.samples import sample_job

FAST = "\n[Pilot]\nhttp_maxtime: 3\nhttp_connect_timeout: 3\n"


def _finals(server, pandaid):
    return [u for u in server.updates(pandaid) if u["fields"]["state"] in ("finished", "failed")]


@pytest.mark.parametrize("rule", [
    {"method": "getJob", "action": "status", "status": 503, "count": 2},
    # a getJob whose connection drops after it was sent is not sent again (the server may have handed
    # out the job): the pilot's next job request gets it
    {"method": "getJob", "action": "drop", "count": 1, "process": False},
    {"method": "getJob", "action": "malformed", "count": 1, "process": False},
    {"method": "getJob", "action": "partial", "count": 1, "process": False},
    {"method": "getJob", "action": "delay", "delay": 6, "count": 1, "process": False},
    {"method": "updateJob", "action": "drop", "count": 3},
    {"method": "updateJob", "action": "malformed", "count": 3},
    {"method": "updateJob", "action": "partial", "count": 3},
    {"method": "updateJob", "action": "delay", "delay": 6, "count": 2},
    {"method": "updateJob", "action": "status", "status": 500, "count": 4},
], ids=lambda r: f"{r['method']}-{r['action']}")
def test_job_survives_server_fault(devserver, start_pilot, rule):
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    devserver.inject(**rule)
    run = start_pilot(config_text=FAST, extra=["-x", "3"])
    run.wait(120)
    record = devserver.wait_final(pandaid, timeout=60)
    assert record["state"] == "finished", run.log_text()[-3000:]
    assert len(_finals(devserver, pandaid)) >= 1
    assert devserver.job(pandaid)["state"] == "finished"


def test_server_down_for_a_minute_during_the_final_update(devserver, start_pilot):
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    # heartbeats at stage-in and payload start pass; then the server is "down" for 60 s
    devserver.inject(method="updateJob", action="status", status=503, after=2, count=100000)
    back = threading.Timer(60, devserver.clear_injections)
    back.start()
    try:
        run = start_pilot(config_text="\n[Pilot]\nhttp_retries: 10\nhttp_backoff: 1\n")
        assert run.wait(400) == 0
    finally:
        back.cancel()
    record = devserver.wait_final(pandaid, timeout=10)
    assert record["state"] == "finished", run.log_text()[-3000:]
    assert not list(run.workdir.glob("pilot_outbox/*.final.json"))
