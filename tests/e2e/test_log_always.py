"""Every job gets a log tarball, whatever moment it failed at (issue: tar refused an empty member list, 1320)."""

from __future__ import annotations

import tarfile
from pathlib import Path

from pilot.common.errorcodes import ErrorCodes as E
from pilot.copytool.common import deterministic_path
from pilot.devserver.samples import sample_job


def test_stage_in_failure_still_gets_its_log(devserver, start_pilot):
    job = sample_job(devserver.storage_dir)
    store = Path(devserver.storage_dir)
    (store / deterministic_path("dev", job["inFiles"])).unlink()  # the input is gone: stage-in fails
    pandaid = devserver.submit(job)
    run = start_pilot()
    run.wait(90)
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed"
    assert int(final["pilotErrorCode"]) not in (0, E.LOGFILECREATIONFAILURE), final["pilotErrorDiag"]
    log = store / deterministic_path("dev", job["logFile"])
    assert log.is_file(), run.log_text()[-3000:]
    with tarfile.open(log) as tar:
        names = tar.getnames()
    assert names[0] == f"tarball_PandaJob_{pandaid}_DEV_QUEUE"
    assert not any(name.endswith(job["inFiles"]) for name in names)


def test_validation_failure_still_gets_its_log(devserver, start_pilot):
    job = sample_job(devserver.storage_dir, overrides={"transformation": ""})  # 1311 before any work dir
    pandaid = devserver.submit(job)
    run = start_pilot()
    run.wait(90)
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert int(final["pilotErrorCode"]) == E.NOTDEFINED, final["pilotErrorDiag"]
    log = Path(devserver.storage_dir) / deterministic_path("dev", job["logFile"])
    with tarfile.open(log) as tar:
        assert tar.getnames() == [f"tarball_PandaJob_{pandaid}_DEV_QUEUE"]  # an empty work dir: the top alone
