"""The long-break stage-out retry plan: which jobs pause, for how long, and the lifetime bound."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from pilot.control import stageoutpause as sp
from pilot.info.jobdata import JobData
from pilot.util import constants as c
from pilot.util.config import config


@pytest.fixture
def settings():
    yield lambda key, value: config.set("Pilot", key, value)
    config.clear_overrides()


def _ctx(lifetime: int = 0, stop: bool = False) -> SimpleNamespace:
    event = threading.Event()
    if stop:
        event.set()
    beats = []
    return SimpleNamespace(infosys=SimpleNamespace(queuedata=None), args=SimpleNamespace(lifetime=lifetime),
                           start_time=time.time(), events=SimpleNamespace(graceful_stop=event),
                           reporter=SimpleNamespace(heartbeat=beats.append), beats=beats)


def _job(runtime: float, maxwalltime: int = 0) -> JobData:
    job = JobData(jobid="7", maxwalltime=maxwalltime)
    now = time.time()
    job.timing.update({c.PILOT_PRE_PAYLOAD: now - runtime, c.PILOT_POST_PAYLOAD: now})
    return job


def test_plan_only_for_long_jobs(settings):
    settings("stageout_long_retry_min_runtime", 100)
    settings("stageout_long_retry_waits", "300, 600,x")
    assert sp.pause_plan(_ctx(), _job(50)) == []
    assert sp.pause_plan(_ctx(), _job(150)) == [300.0, 600.0]
    settings("stageout_long_retry_min_runtime", 0)
    assert sp.pause_plan(_ctx(), _job(10 ** 6)) == []


def test_queuedata_overrides_config(settings):
    settings("stageout_long_retry_min_runtime", 0)
    ctx = _ctx()
    ctx.infosys.queuedata = SimpleNamespace(params={"stageout_long_retry_min_runtime": 10,
                                                    "stageout_long_retry_waits": "5"})
    assert sp.pause_plan(ctx, _job(20)) == [5.0]


def test_pause_bounded_by_lifetime(settings):
    settings("stageout_long_retry_reserve", 100)
    job = _job(10, maxwalltime=100)  # hardly any walltime left after the reserve
    assert sp.remaining_lifetime(_ctx(), job) < 100
    assert sp.long_pause(_ctx(), job, 50, 1) is False
    assert "stageoutLongRetries" not in job.extra_metrics


def test_pause_ends_on_stop_and_counts(settings):
    settings("stageout_long_retry_reserve", 0)
    job = _job(10)
    start = time.monotonic()
    assert sp.long_pause(_ctx(stop=True), job, 600, 2) is False
    assert time.monotonic() - start < 60
    assert job.extra_metrics["stageoutLongRetries"] == 1


def test_pauses_are_shared_by_outputs_and_log(settings):
    settings("stageout_long_retry_min_runtime", 1)
    settings("stageout_long_retry_waits", "300,600")
    job = _job(10)
    job.extra_metrics["stageoutLongRetries"] = 1  # the outputs took one pause already
    assert sp.pause_plan(_ctx(), job) == [600.0]


def test_short_pause_with_heartbeats(settings):
    settings("stageout_long_retry_reserve", 0)
    settings("heartbeat", 0.2)
    ctx = _ctx(lifetime=3600)
    assert sp.long_pause(ctx, _job(10), 1.0, 1) is True
    assert ctx.beats  # heartbeats were sent during the pause
