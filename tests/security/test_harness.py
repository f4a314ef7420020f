"""The harness itself: a plain job finishes under a namespaced pilot in both modes and leaves nothing."""

from __future__ import annotations

from pilot.devserver.samples import sample_job


def test_plain_job_in_namespace(secure_devserver, secure_pilot, pilot_mode):
    pandaid = secure_devserver.submit(sample_job(secure_devserver.storage_dir))
    run = secure_pilot.start()
    assert run.wait(180) == 0, run.log_text()[-4000:]
    record = secure_devserver.wait_final(pandaid, timeout=30)
    assert record["state"] == "finished", run.log_text()[-4000:]
    assert run.wait_until_empty(30) == []
    # the pilot really ran as the mode's user: its work dir is that user's
    assert run.main_dir().stat().st_uid == pilot_mode.uid
