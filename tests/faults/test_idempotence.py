"""A job is run once and finished once, whatever the server hands out and whenever the pilot is killed.

- The dev server hands out a PandaID this pilot tree already ran (``/admin/requeue``), to the same
  pilot or to the next one in the same place, or one whose final update still waits in the outbox:
  the pilot says so and skips it (no payload, no stage-out, no update).
- A pilot is SIGKILLed while its final update is on the wire (the server stores it; the pilot never
  sees the answer): the next pilot sends the stored final update once more (the server's duplicate
  is the only one possible, the pilot never knew) and neither stages out nor recovers the job.
- The same kill after the pilot had recorded the acknowledgement (its ledger marker, written before
  the outbox entry and the recovery record go): the next pilot sends nothing and stages out nothing.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from pilot.devserver.samples import sample_job

BOUND = 90  # seconds: "does not hang"
NO_HEARTBEAT = "\n[Pilot]\nheartbeat: 600\ndebug_heartbeat: 600\n"


def _after_final(devserver, pandaid) -> list:
    return [u for u in devserver.updates(pandaid) if u.get("after_final")]


def test_same_pandaid_to_the_next_pilot_is_skipped(devserver, start_pilot, tmp_path):
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    site = tmp_path / "site"
    first = start_pilot(workdir=site)
    assert first.wait(BOUND) == 0
    assert devserver.wait_final(pandaid, timeout=10)["state"] == "finished"
    updates, traces = len(devserver.updates(pandaid)), len(devserver.traces())
    devserver.requeue(pandaid)

    second = start_pilot(workdir=site)
    second.wait(BOUND)
    log = second.log_text()
    assert f"job {pandaid} was handed out again but this pilot tree already has it (the ledger)" in log
    assert len(devserver.updates(pandaid)) == updates  # nothing reported for it again
    assert len(devserver.traces()) == traces  # nothing staged in or out again
    assert not (second.main_dir() / f"PanDA_Pilot-{pandaid}").exists()  # no work dir, no payload


def test_same_pandaid_to_the_same_pilot_is_skipped(devserver, start_pilot):
    devserver.set_queuedata("DEV_QUEUE", {"timefloor": 10})  # minutes: a multi-job pilot
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    # the second getJob waits on the server, long enough for the test to hand the job out again
    devserver.inject(method="getJob", action="delay", delay=4, after=1, count=1)
    run = start_pilot(extra=["-v", "2"])
    assert devserver.wait_final(pandaid, timeout=BOUND)["state"] == "finished"
    updates = len(devserver.updates(pandaid))
    devserver.requeue(pandaid)
    run.wait(BOUND)
    assert f"job {pandaid} was handed out again but this pilot tree already has it" in run.log_text()
    assert len(devserver.updates(pandaid)) == updates
    assert (run.main_dir() / "pandaIDs.out").read_text().split() == [str(pandaid)]


def test_pandaid_whose_final_update_waits_in_the_outbox_is_skipped(devserver, start_pilot, tmp_path):
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    devserver.inject(method="updateJob", action="status", status=503, after=2, count=100000)
    site = tmp_path / "site"
    first = start_pilot(workdir=site)
    first.wait(BOUND)
    assert (site / "pilot_outbox" / f"{pandaid}.final.json").exists()
    devserver.requeue(pandaid)
    second = start_pilot(workdir=site)
    second.wait(BOUND)
    assert "this pilot tree already has it (the ledger, the outbox)" in second.log_text()
    assert not (second.main_dir() / f"PanDA_Pilot-{pandaid}").exists()
    assert (site / "pilot_outbox" / f"{pandaid}.final.json").exists()  # still kept for delivery
    devserver.clear_injections()
    third = start_pilot(workdir=site)
    third.wait(BOUND)
    assert devserver.wait_final(pandaid, timeout=10)["state"] == "finished"
    assert not (site / "pilot_outbox" / f"{pandaid}.final.json").exists()


def _kill_while_final_update_in_flight(devserver, start_pilot, site):
    """Run a job and SIGKILL its pilot while the server holds (and then stores) its final update."""
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    rule = devserver.inject(method="updateJob", action="delay", delay=3)
    run = start_pilot(workdir=site, config_text=NO_HEARTBEAT)
    outbox = site / "pilot_outbox" / f"{pandaid}.final.json"
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if outbox.exists():
            applied = next(r["applied"] for r in devserver.injections() if r["id"] == rule["id"])
            if applied > len(devserver.requests("updateJob")):  # the final update is held by the server
                break
        time.sleep(0.02)
    else:
        raise AssertionError(f"the final update never reached the server:\n{run.log_text()[-3000:]}")
    os.killpg(run.proc.pid, signal.SIGKILL)
    run.proc.wait()
    assert devserver.wait_final(pandaid, timeout=30)["state"] == "finished"  # the server stored it
    devserver.clear_injections()
    assert (site / "pilot_recovery" / f"{pandaid}.json").exists()  # killed before it could go
    assert outbox.exists()
    return pandaid


@pytest.mark.parametrize("acked", [False, True], ids=["killed-before-the-answer", "killed-after-the-ack-marker"])
def test_killed_between_final_update_and_record_removal(devserver, start_pilot, tmp_path, acked):
    site = tmp_path / "site"
    pandaid = _kill_while_final_update_in_flight(devserver, start_pilot, site)
    if acked:  # the state the pilot leaves when killed right after it recorded the acknowledgement
        (site / "pilot_ledger" / f"{pandaid}.acked").touch()
    traces, finals = len(devserver.traces()), len(_after_final(devserver, pandaid))
    assert finals == 0

    second = start_pilot(workdir=site)
    assert second.wait(BOUND) == 0, second.log_text()[-3000:]
    log = second.log_text()
    assert "recovering job" not in log
    assert len(devserver.traces()) == traces  # no second stage-out
    resent = _after_final(devserver, pandaid)
    if acked:
        assert resent == []
        assert "already acknowledged" in log
    else:  # the pilot never saw the answer: its stored final update goes once more, answered "done"
        assert len(resent) == 1 and resent[0]["duplicate"]
    assert not (site / "pilot_recovery" / f"{pandaid}.json").exists()
    assert not (site / "pilot_outbox" / f"{pandaid}.final.json").exists()
    assert (site / "pilot_ledger" / f"{pandaid}.acked").exists()
    third = start_pilot(workdir=site)  # and nothing is left for a later pilot to repeat
    third.wait(BOUND)
    assert len(_after_final(devserver, pandaid)) == len(resent)
