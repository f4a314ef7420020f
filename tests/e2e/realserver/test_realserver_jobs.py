"""Generic jobs through the real PanDA server: each run ends with the job's record in its database."""

from __future__ import annotations

import os
import uuid
from datetime import datetime

from pilot.api.communicators.panda import PandaServerCommunicator
from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import adler32_of_file, storage_path
from pilot.util.https import HttpClient

SCOPE = "pilotci"


def tag() -> str:
    return uuid.uuid4().hex[:10]


def parse(value) -> datetime:
    return datetime.fromisoformat(str(value))


def assert_file_row(server, row: dict) -> None:
    """The file the server recorded is on the storage with that size and checksum."""
    stored = storage_path(server.storage, row["scope"] or SCOPE, row["lfn"])
    assert stored.is_file(), f"{row['lfn']} not on the storage at {stored}"
    assert int(row["fsize"]) == stored.stat().st_size
    assert row["checksum"] == f"ad:{adler32_of_file(stored)}"
    assert row["guid"]


def test_local_transformation_job_record(realserver, start_pilot):
    t = tag()
    out, log = f"pilotci.{t}.out.txt", f"pilotci.{t}.log.tgz"
    [pandaid] = realserver.submit({"name": f"local-{t}", "transformation": "/bin/bash",
                                   "parameters": f"-c 'sleep 8; echo hello from {t} > {out}'",  # the monitor samples it
                                   "outputs": [out], "log": log})
    run = start_pilot()
    assert run.wait(180) == 0, run.log_text()[-3000:]
    row = realserver.wait_final(pandaid)
    assert row["jobstatus"] == "finished", (row, run.log_text()[-3000:])
    assert int(row["piloterrorcode"]) == 0 and int(row["transexitcode"]) == 0
    # the fields of issue point 6 as this server generation recorded them
    assert row["modificationhost"] == os.uname()[1]
    assert row["starttime"] and row["endtime"] and parse(row["starttime"]) <= parse(row["endtime"])
    assert row["jobsubstatus"] == "stageout"
    # meanCoreCount: 1.0.4 writes it to the active job's row but its archival drops it (JobSpec has no such
    # attribute), so the check is on what the server's update_job received, from its own log
    received = realserver.update_job_log(pandaid)
    assert any("mean_core_count=None" not in line and "mean_core_count=" in line for line in received), received
    assert len(row["pilottiming"].split("|")) == 5
    files = realserver.files(pandaid)
    assert set(files) == {out, log}
    for lfn in (out, log):
        assert_file_row(realserver, files[lfn])
    assert storage_path(realserver.storage, SCOPE, out).read_text() == f"hello from {t}\n"
    states = realserver.states(pandaid)
    assert [s for s in states if s in ("sent", "starting", "running", "holding", "finished")] == \
        ["sent", "starting", "running", "holding", "finished"]
    # the monitoring loop logs the sub-state
    assert "sub-state running" in run.log_text()


def test_failing_job_record(realserver, start_pilot):
    t = tag()
    log = f"pilotci.{t}.log.tgz"
    [pandaid] = realserver.submit({"name": f"fail-{t}", "transformation": "/bin/bash",
                                   "parameters": "-c 'echo broken payload >&2; exit 7'", "log": log})
    run = start_pilot()
    run.wait(180)
    row = realserver.wait_final(pandaid)
    assert row["jobstatus"] == "failed", (row, run.log_text()[-3000:])
    assert int(row["piloterrorcode"]) == ErrorCodes.PAYLOADEXECUTIONFAILURE
    assert int(row["transexitcode"]) == 7
    assert "broken payload" in row["piloterrordiag"]
    assert row["jobsubstatus"] == "stageout"  # it failed running, then its log went out
    assert row["modificationhost"] == os.uname()[1] and row["endtime"]
    # the log still left and the server has its record
    files = realserver.files(pandaid)
    assert set(files) == {log}
    assert_file_row(realserver, files[log])
    assert realserver.states(pandaid)[-1] == "failed"


def test_multi_job_pilot_records(realserver, start_pilot):
    t = tag()
    jobs = [{"name": f"multi-{t}-{i}", "transformation": "/bin/bash",
             "parameters": f"-c 'echo job {i} > pilotci.{t}.{i}.txt'", "outputs": [f"pilotci.{t}.{i}.txt"],
             "log": f"pilotci.{t}.{i}.log.tgz"} for i in range(3)]
    ids = realserver.submit(*jobs)
    run = start_pilot(extra=["-v", "5"])  # up to 5 job requests: 3 jobs, then none left
    assert run.wait(300) == 0, run.log_text()[-3000:]
    for i, pandaid in enumerate(ids):
        row = realserver.wait_final(pandaid)
        assert row["jobstatus"] == "finished", (pandaid, row, run.log_text()[-3000:])
        files = realserver.files(pandaid)
        assert set(files) == {f"pilotci.{t}.{i}.txt", f"pilotci.{t}.{i}.log.tgz"}
        for entry in files.values():
            assert_file_row(realserver, entry)
    log = run.log_text()
    assert all(f"received job {pandaid}" in log for pandaid in ids)  # one pilot ran all three


def test_credentials_through_the_rest_api(realserver):
    """panda-server 1.x refuses the legacy getKeyPair (403); the pilot gets the pair from creds/get_key_pair."""
    http = HttpClient(retries=1, timeout=60, connect_timeout=10)
    try:
        comm = PandaServerCommunicator(realserver.url, http, api="legacy")
        pair = comm.get_key_pair("pilotci_public", "pilotci_private")
        assert pair == {"StatusCode": 0, "errorDialog": "", "publicKey": "PILOTCI-ACCESS-KEY",
                        "privateKey": "PILOTCI-SECRET-KEY"}
        assert comm.api == "rest"
        missing = comm.get_key_pair("pilotci_public", "no_such_key")
        assert missing["StatusCode"] != 0 and "no_such_key" in missing["errorDialog"]
        # this DN may not fetch proxies: the REST call reaches the server, which says why
        proxy = comm.get_proxy("atlas")
        assert proxy["StatusCode"] != 0 and "not in authorized users" in proxy["errorDialog"]
    finally:
        http.close()


def test_downloaded_transformation_job_record(realserver, start_pilot):
    """A transformation given as a URL (a user analysis job): the pilot downloads it from the server's /trf/."""
    t = tag()
    out, log = f"pilotci.{t}.trf.txt", f"pilotci.{t}.log.tgz"
    script = realserver.trf_dir / f"pilotci-run-{t}.sh"
    script.write_text('#!/bin/sh\necho "downloaded transformation ran with $*" > "$1"\n')
    script.chmod(0o644)  # served as a plain file: the pilot must make its copy executable
    url = f"{realserver.url}/trf/{script.name}"
    [pandaid] = realserver.submit({"name": f"trf-{t}", "transformation": url, "parameters": f"{out} x y",
                                   "outputs": [out], "log": log})
    run = start_pilot(extra=["-g", f"{realserver.url}/trf/"])
    assert run.wait(180) == 0, run.log_text()[-3000:]
    row = realserver.wait_final(pandaid)
    assert row["jobstatus"] == "finished", (row, run.log_text()[-3000:])
    assert int(row["piloterrorcode"]) == 0 and row["transformation"] == url
    files = realserver.files(pandaid)
    assert set(files) == {out, log}
    for lfn in (out, log):
        assert_file_row(realserver, files[lfn])
    assert storage_path(realserver.storage, SCOPE, out).read_text() == \
        f"downloaded transformation ran with {out} x y\n"


def test_transformation_outside_the_allowed_urls_fails_1149(realserver, start_pilot):
    t = tag()
    log = f"pilotci.{t}.log.tgz"
    [pandaid] = realserver.submit({"name": f"trf-refused-{t}", "transformation": f"{realserver.url}/trf/nope-{t}.sh",
                                   "parameters": "", "log": log})
    run = start_pilot()  # no -g: the server's /trf/ is not an allowed base URL
    run.wait(180)
    row = realserver.wait_final(pandaid)
    assert row["jobstatus"] == "failed", (row, run.log_text()[-3000:])
    assert int(row["piloterrorcode"]) == ErrorCodes.TRFDOWNLOADFAILURE
    assert "allowed base URL" in row["piloterrordiag"]
    assert set(realserver.files(pandaid)) == {log}  # a job that fails before its payload still leaves a log
