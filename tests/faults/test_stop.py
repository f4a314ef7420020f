"""Stop means stop: after SIGTERM with the server down the pilot ends within 30 s, its final update kept.

The server is really down (its process stopped: connections are refused), the pilot runs with the
shipped retry settings (10 retries, back-off from 1 s), and it is told to stop while its payload
runs. Every wait of the job, data and monitor loops and every back-off yields to the stop event, so
the pilot ends well inside a batch system's grace period, with the job's final update (failed, the
code of SIGTERM) in the outbox for the next pilot.
"""

from __future__ import annotations

import json
import os
import signal
import time

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job
from tests.e2e.conftest import wait_for_file

SHIPPED_RETRIES = "\n[Pilot]\nhttp_retries: 10\nhttp_backoff: 1\n"


def test_sigterm_with_the_server_down_ends_within_30_s(devserver, start_pilot, tmp_path):
    job = sample_job(devserver.storage_dir, overrides={"jobPars": "-c 'touch started; sleep 300'"})
    pandaid = devserver.submit(job)
    site = tmp_path / "site"
    run = start_pilot(workdir=site, config_text=SHIPPED_RETRIES)
    devserver.wait_state(pandaid, "running", timeout=60)
    assert wait_for_file(run.main_dir() / f"PanDA_Pilot-{pandaid}" / "started", 60)
    devserver.stop()  # the server is gone: every request is refused from now on
    start = time.monotonic()
    os.kill(run.proc.pid, signal.SIGTERM)
    status = run.wait(60)
    took = time.monotonic() - start
    assert took < 30, f"the pilot needed {took:.1f} s to stop:\n{run.log_text()[-3000:]}"
    assert status != 0
    stored = json.loads((site / "pilot_outbox" / f"{pandaid}.final.json").read_text())
    assert stored["fields"]["state"] == "failed"
    assert int(stored["fields"]["pilotErrorCode"]) == ErrorCodes.SIGTERM
