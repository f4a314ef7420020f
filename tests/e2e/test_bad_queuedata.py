"""Queue data that is mis-typed or sets nonsense resource limits stops the pilot with 1341 before any getJob."""

from __future__ import annotations

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job
from pilot.util.auxiliary import shell_exit_code


@pytest.mark.parametrize("field, value", [("maxrss", "huge"), ("maxtime", -600), ("maxwdir", -1),
                                          ("corecount", "eight"), ("maxinputsize", -5), ("timefloor", -1)])
def test_bad_queuedata_is_1341(devserver, start_pilot, field, value):
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    devserver.set_queuedata("DEV_QUEUE", {field: value})
    run = start_pilot()
    status = run.wait(90)
    log = run.log_text()
    assert status == shell_exit_code(ErrorCodes.BADQUEUECONFIGURATION), log[-3000:]
    assert "bad queue configuration of DEV_QUEUE" in log and field in log, log[-3000:]
    assert devserver.requests("getJob") == []
    assert devserver.job(pandaid)["state"] in ("defined", "activated")
