"""The long-break stage-out retry end to end: the storage is broken when the job's outputs leave and
comes back during the pause; the pilot keeps heartbeating, retries and the job finishes. A stop
signal ends a pause at once; a short job takes no pause.

The storage is the dev server's LOCAL_DISK (mv, file://): the outputs and the log go to the scope
``brk``, and a plain file in place of the ``brk`` directory makes every write fail until the test
removes it (the storage "comes back")."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from pilot.copytool.common import deterministic_path
from pilot.devserver.samples import sample_job

SCOPE = "brk"
PAUSE_LINE = "long-break retry 1 after a pause"


def _config(min_runtime: int, waits: str) -> str:
    return (f"\n[Pilot]\nheartbeat: 1\nstageout_long_retry_min_runtime: {min_runtime}\n"
            f"stageout_long_retry_waits: {waits}\nstageout_long_retry_reserve: 0\n")


def _job(devserver) -> dict:
    job = sample_job(devserver.storage_dir)
    out = job["outFiles"].split(",")[0]
    job["jobPars"] = f"-c 'sleep 2; cat dev.input.*txt | wc -c > {out}'"
    job.update(scopeOut=",".join([SCOPE] * len(job["outFiles"].split(","))), scopeLog=SCOPE)
    return job


def _break_storage(devserver) -> Path:
    blocker = Path(devserver.storage_dir) / SCOPE
    blocker.write_text("not a directory: the storage is down\n")
    return blocker


def _wait_for_line(run, text: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.proc.poll() is None:
        if text in run.log_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} in the pilot log:\n{run.log_text()[-4000:]}")


def test_storage_comes_back_during_the_pause(devserver, start_pilot):
    blocker = _break_storage(devserver)
    job = _job(devserver)
    pandaid = devserver.submit(job)
    run = start_pilot(config_text=_config(1, "6"))
    _wait_for_line(run, PAUSE_LINE)
    beats_before = len(devserver.updates(pandaid))
    time.sleep(2.5)  # heartbeats (every 1 s here) go on while the pilot pauses
    assert len(devserver.updates(pandaid)) > beats_before
    blocker.unlink()  # the storage is back
    assert run.wait(120) == 0, run.log_text()[-4000:]
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "finished", run.log_text()[-4000:]
    assert final["jobMetrics"]["stageoutLongRetries"] == "1"
    store = Path(devserver.storage_dir)
    for lfn in job["outFiles"].split(",")[:1] + [job["logFile"]]:
        assert (store / deterministic_path(SCOPE, lfn)).is_file()
    assert "long-break pause over: stage-out retry 1" in run.log_text()


def test_a_stop_signal_ends_the_pause(devserver, start_pilot):
    _break_storage(devserver)
    pandaid = devserver.submit(_job(devserver))
    run = start_pilot(config_text=_config(1, "600"))
    _wait_for_line(run, PAUSE_LINE)
    start = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    run.wait(60)  # far less than the 600 s pause: the stop event ended it
    assert time.monotonic() - start < 60
    assert "long-break stage-out retry abandoned" in run.log_text()
    assert devserver.job(pandaid)["state"] in ("failed", "holding"), run.log_text()[-3000:]


def test_a_short_job_takes_no_pause(devserver, start_pilot):
    _break_storage(devserver)
    pandaid = devserver.submit(_job(devserver))
    run = start_pilot(config_text=_config(3600, "600"))
    run.wait(120)
    assert "long-break" not in run.log_text()
    assert devserver.job(pandaid)["state"] in ("failed", "holding"), run.log_text()[-3000:]
