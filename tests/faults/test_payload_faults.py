"""Payload faults: segfault, outside kill, a payload that ignores SIGTERM, exit codes."""

from __future__ import annotations

import os
import signal
import time

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job

from tests.e2e.conftest import wait_for_file
from tests.payload_procs import host_pids, wait_gone


def _final(server, pandaid):
    return server.wait_final(pandaid, timeout=60)["final_update"]


def test_segfault_is_1328(devserver, start_pilot):
    pandaid = devserver.submit(sample_job(devserver.storage_dir, overrides={"jobPars": "-c 'kill -SEGV $$'"}))
    start_pilot().wait(60)
    final = _final(devserver, pandaid)
    assert final["state"] == "failed" and int(final["pilotErrorCode"]) == ErrorCodes.PAYLOADSIGSEGV
    assert int(final["transExitCode"]) == 128 + signal.SIGSEGV


def test_payload_killed_from_outside(devserver, start_pilot):
    job = sample_job(devserver.storage_dir, overrides={"jobPars": "-c 'echo $$ > payload.pid; sleep 300'"})
    pandaid = devserver.submit(job)
    run = start_pilot()
    pidfile = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and pidfile is None:
        dirs = list(run.workdir.glob(f"PanDA_Pilot2_*/PanDA_Pilot-{pandaid}/payload.pid"))
        pidfile = dirs[0] if dirs else None
        time.sleep(0.05)
    assert pidfile is not None and wait_for_file(pidfile)
    time.sleep(0.1)
    # the PID the payload wrote is its own namespace's: find the process as the host sees it
    deadline = time.monotonic() + 10
    found = []
    while not found and time.monotonic() < deadline:
        found = host_pids(int(pidfile.read_text()), "sleep 300", environ=f"PILOT_JOB_WORKDIR={pidfile.parent}")
        time.sleep(0.05)
    assert len(found) == 1, found
    os.kill(found[0], signal.SIGKILL)
    run.wait(60)
    final = _final(devserver, pandaid)
    assert final["state"] == "failed"
    assert int(final["pilotErrorCode"]) == ErrorCodes.PAYLOADEXECUTIONFAILURE
    assert int(final["transExitCode"]) == 137
    assert "signal 9" in final["pilotErrorDiag"]


def test_payload_ignoring_sigterm_is_killed(devserver, start_pilot):
    pars = "-c 'trap \"\" TERM; echo $$ > payload.pid; while true; do sleep 1; done'"
    job = sample_job(devserver.storage_dir, overrides={"jobPars": pars})
    pandaid = devserver.submit(job)
    run = start_pilot()
    devserver.wait_state(pandaid, "running", timeout=30)
    pidfile = run.main_dir() / f"PanDA_Pilot-{pandaid}" / "payload.pid"
    assert wait_for_file(pidfile, 30)
    payload = int(pidfile.read_text())
    os.kill(run.proc.pid, signal.SIGTERM)
    assert run.wait(90) == 143
    final = _final(devserver, pandaid)
    assert int(final["pilotErrorCode"]) == ErrorCodes.SIGTERM
    assert wait_gone(payload, environ=f"PILOT_JOB_WORKDIR={pidfile.parent}", timeout=5)


def test_payload_exit_codes_reach_the_server(devserver, start_pilot):
    for code in (1, 65, 255):
        pandaid = devserver.submit(sample_job(devserver.storage_dir, overrides={"jobPars": f"-c 'exit {code}'"}))
        start_pilot().wait(60)
        final = _final(devserver, pandaid)
        assert int(final["transExitCode"]) == code
        assert int(final["pilotErrorCode"]) == ErrorCodes.PAYLOADEXECUTIONFAILURE
