"""Whole pilot runs against the dev server: real processes, sockets and files."""

from __future__ import annotations

import json
import os
import signal
import zlib
from pathlib import Path

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job

from tests.payload_procs import wait_gone

from .conftest import wait_for_file


def adler32(path: Path) -> str:
    return f"{zlib.adler32(path.read_bytes()) & 0xffffffff:08x}"


def storage_path(storage: Path, scope: str, lfn: str) -> Path:
    """Deterministic path: <scope dots->slashes>/<md5 0:2>/<md5 2:4>/<lfn>."""
    import hashlib

    digest = hashlib.md5(f"{scope}:{lfn}".encode()).hexdigest()
    return storage / scope.replace(".", "/") / digest[0:2] / digest[2:4] / lfn


def test_successful_job(devserver, start_pilot):
    job = sample_job(devserver.storage_dir)
    pandaid = devserver.submit(job)
    run = start_pilot()
    status = run.wait()
    record = devserver.wait_final(pandaid, timeout=30)
    final = record["final_update"]
    assert record["state"] == "finished", run.log_text()[-3000:]
    assert status == 0
    assert int(final["pilotErrorCode"]) == 0 and int(final["transExitCode"]) == 0
    raw = devserver.updates(pandaid)[-1]["fields"]  # as sent on the wire
    assert raw["state"] == "finished" and len(raw["pilotTiming"].split("|")) == 5
    xml = json.loads(raw["xml"])
    outputs = {lfn: meta for lfn, meta in xml.items()}
    out_lfn = job["outFiles"].split(",")[0]
    assert set(outputs) == {out_lfn, job["logFile"]}
    stored = storage_path(Path(devserver.storage_dir), job["scopeOut"].split(",")[0], out_lfn)
    assert stored.exists(), f"output not on storage at {stored}"
    assert outputs[out_lfn]["adler32"] == adler32(stored)
    # the payload really read the input: it wrote the input's byte count
    assert int(stored.read_text().split()[0]) == int(job["fsize"])
    # a heartbeat at stage-in start and at payload start came before the final update
    states = [u["fields"]["state"] for u in devserver.updates(pandaid)]
    assert states[0] == "starting" and "running" in states and states[-1] == "finished"
    main = run.main_dir()
    assert (main / "pandaIDs.out").read_text().split() == [str(pandaid)]
    timing = json.loads((main / "pilot_timing.json").read_text())
    assert "PILOT_POST_FINAL_UPDATE" in timing[str(pandaid)]
    assert float(final["cpuConsumptionTime"]) >= 0


def test_payload_nonzero_exit(devserver, start_pilot):
    job = sample_job(devserver.storage_dir, overrides={"jobPars": "-c 'echo broken >&2; exit 7'"})
    pandaid = devserver.submit(job)
    run = start_pilot()
    run.wait()
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed"
    assert int(final["pilotErrorCode"]) == ErrorCodes.PAYLOADEXECUTIONFAILURE
    assert int(final["transExitCode"]) == 7
    assert "broken" in final["pilotErrorDiag"]
    # the log still left: the payload's stderr is inside the log tarball on storage
    raw = devserver.updates(pandaid)[-1]["fields"]
    assert job["logFile"] in json.loads(raw["xml"])


def test_missing_input_file(devserver, start_pilot):
    job = sample_job(devserver.storage_dir)
    lfn = job["inFiles"]
    storage_path(Path(devserver.storage_dir), job["scopeIn"], lfn).unlink()
    pandaid = devserver.submit(job)
    run = start_pilot()
    run.wait()
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed"
    assert int(final["pilotErrorCode"]) in (ErrorCodes.NOSUCHFILE, ErrorCodes.MISSINGINPUTFILE)
    assert lfn in final["pilotErrorDiag"] or "input" in final["pilotErrorDiag"].lower()


def test_sigterm_mid_payload(devserver, start_pilot):
    job = sample_job(devserver.storage_dir, overrides={"jobPars": "-c 'echo $$ > payload.pid; sleep 300'"})
    pandaid = devserver.submit(job)
    run = start_pilot()
    devserver.wait_state(pandaid, "running", timeout=30)
    main = run.main_dir()
    pidfile = main / f"PanDA_Pilot-{pandaid}" / "payload.pid"
    assert wait_for_file(pidfile, 30)
    payload_pid = int(pidfile.read_text())
    os.kill(run.proc.pid, signal.SIGTERM)
    status = run.wait(60)
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed"
    assert int(final["pilotErrorCode"]) == ErrorCodes.SIGTERM
    assert status == 143
    # the log of the aborted job still reached storage
    assert job["logFile"] in json.loads(devserver.updates(pandaid)[-1]["fields"]["xml"])
    # no payload process is left (it wrote its PID in its own namespace)
    assert wait_gone(payload_pid, "sleep 300", cwd=str(pidfile.parent), timeout=5)


def test_no_job_available(devserver, start_pilot):
    run = start_pilot()
    assert run.wait(60) == 0
    assert devserver.requests("getJob"), "the pilot never asked for a job"


def test_server_busy_twice_then_success(devserver, start_pilot):
    job = sample_job(devserver.storage_dir)
    pandaid = devserver.submit(job)
    # getJob hands out work: it is asked again only after a reply that says it was not processed (503);
    # updates are asked again after a 500 too
    devserver.inject(method="getJob", action="status", status=503, count=2)
    devserver.inject(method="updateJob", action="status", status=500, count=2)
    run = start_pilot()
    run.wait()
    record = devserver.wait_final(pandaid, timeout=30)
    assert record["state"] == "finished", run.log_text()[-3000:]


def test_malformed_job_definition_is_reported(devserver, start_pilot):
    job = sample_job(devserver.storage_dir, overrides={"GUID": "a,b,c"})
    pandaid = devserver.submit(job)
    run = start_pilot()
    run.wait()
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed"
    assert int(final["pilotErrorCode"]) == ErrorCodes.NOTSAMELENGTH
    assert "GUID" in final["pilotErrorDiag"]
