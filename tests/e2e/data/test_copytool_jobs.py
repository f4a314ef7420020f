"""One whole pilot job per copytool: stage-in, payload, stage-out of the output and the log, final update.

Every job reads two inputs from storage and writes one output; the test then checks the job finished,
the output and the log are on storage with the adler32 the server got in the final update's ``xml``,
and the dev server's trace sink received one DONE trace per file (``get_sm`` for inputs, ``put_sm``
for output and log) naming the copytool. Tools and storages:

========  ===========================================  ==================================================
tool      storage                                      replicas
========  ===========================================  ==================================================
mv        the dev server's LOCAL_DISK (file://)        storage read protocol
lsm       LOCAL_DISK through stub lsm-get/lsm-put      storage read protocol
xrdcp     XRootD root://127.0.0.1:1094//e2e/<tag>      Rucio (none known) -> storage read protocol
gfal      XRootD davs://127.0.0.1:1094/e2e/<tag>       Rucio (none known) -> storage read protocol
rucio     the Rucio RSE PILOT_XRD                      Rucio list_replicas (inputs uploaded first)
s3        a private SeaweedFS S3 server, bucket pilot  storage read protocol (objects uploaded first)
========  ===========================================  ==================================================
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from pathlib import Path

import pytest

from pilot.copytool.common import deterministic_path
from pilot.devserver.samples import sample_job

from .conftest import LSM_STUBS, STORAGE_DATA, require_servers, s3_storage, storage_env

pytestmark = pytest.mark.storage

QUEUE = "DEV_QUEUE"
INPUTS = [b"first input of the e2e copytool job\n" * 40, os.urandom(70_000)]


def adler32(path: Path) -> str:
    return f"{zlib.adler32(path.read_bytes()) & 0xffffffff:08x}"


def storage_entry(name: str, protocols: list) -> dict:
    arprotocols = {activity: protocols for activity in ("read_lan", "write_lan", "read_wan", "write_wan")}
    return {"name": name, "id": 77, "type": "DATADISK", "is_deterministic": True, "state": "ACTIVE",
            "site": "DEV_SITE", "arprotocols": arprotocols, "rprotocols": {}}


def use_tool(devserver, tool: str, endpoint: str, storage: dict = None) -> None:
    """Point the dev queue's activities at ``tool`` and ``endpoint``."""
    if storage is not None:
        devserver.set_storagedata(endpoint, storage, merge=False)
    activities = ("pr", "pw", "pl", "pls")
    devserver.set_queuedata(QUEUE, {
        "copytools": {tool: {"setup": ""}},
        "acopytools": {a: [tool] for a in activities},
        "astorages": {**{a: [endpoint] for a in activities}, "read_lan": [endpoint], "write_lan": [endpoint]},
    })


def on_endpoint(job: dict, endpoint: str, scope: str = "") -> dict:
    """The job's files on ``endpoint`` (and in ``scope``)."""
    count_in = len(job["inFiles"].split(","))
    job.update(ddmEndPointIn=",".join([endpoint] * count_in), ddmEndPointOut=f"{endpoint},{endpoint}",
               destinationSE=endpoint, fileDestinationSE=f"{endpoint},{endpoint}")
    if scope:
        job.update(scopeIn=",".join([scope] * count_in), scopeOut=scope, scopeLog=scope)
    return job


def run_job(devserver, start_pilot, job: dict, env: dict) -> tuple:
    pandaid = devserver.submit(job)
    run = start_pilot(env=env)
    status = run.wait(180)
    record = devserver.wait_final(pandaid, timeout=30)
    assert record["state"] == "finished", run.log_text()[-5000:]
    assert status == 0
    raw = devserver.updates(pandaid)[-1]["fields"]
    return pandaid, json.loads(raw["xml"]), run


def check_outputs(job: dict, xml: dict, where) -> None:
    """Output and log are on storage (``where(lfn)`` gives the path) with the adler32 in the final xml."""
    out_lfn, log_lfn = job["outFiles"].split(",")[0], job["logFile"]
    assert set(xml) == {out_lfn, log_lfn}
    for lfn in (out_lfn, log_lfn):
        path = where(lfn)
        assert path.is_file(), f"{lfn} not on storage at {path}"
        assert xml[lfn]["adler32"] == adler32(path)
        assert int(xml[lfn]["fsize"]) == path.stat().st_size
        assert xml[lfn]["surl"]
    # the payload read both inputs (it wrote their byte count)
    assert int(where(out_lfn).read_text().split()[0]) == sum(len(data) for data in INPUTS)


def check_traces(devserver, pandaid: int, job: dict, tool: str, endpoint: str) -> None:
    traces = [t for t in devserver.traces() if str(t.get("appid")) == str(pandaid)]
    by_file = {t["filename"]: t for t in traces}
    inputs = job["inFiles"].split(",")
    outputs = [job["outFiles"].split(",")[0], job["logFile"]]
    assert set(by_file) == set(inputs + outputs), traces
    assert len(traces) == len(by_file), "one trace per file"
    for lfn, trace in by_file.items():
        assert trace["eventType"] == ("get_sm" if lfn in inputs else "put_sm")
        assert trace["clientState"] == "DONE", trace
        assert trace["protocol"] == tool and trace["remoteSite"] == endpoint
        assert trace["localSite"] and trace["timeEnd"] >= trace["timeStart"]
        assert trace["url"] and int(trace["filesize"]) > 0


def test_mv_job(devserver, start_pilot):
    job = sample_job(devserver.storage_dir, contents=INPUTS)
    pandaid, xml, _ = run_job(devserver, start_pilot, job, {})
    store = Path(devserver.storage_dir)
    check_outputs(job, xml, lambda lfn: store / deterministic_path("dev", lfn))
    # mv places files for the CE and touches no storage: no Rucio trace, as with Pilot 2 and 3
    assert [t for t in devserver.traces() if str(t.get("appid")) == str(pandaid)] == []
    assert devserver.requests("traces") == []


def test_lsm_job(devserver, start_pilot):
    use_tool(devserver, "lsm", "LOCAL_DISK")
    job = sample_job(devserver.storage_dir, contents=INPUTS)
    pandaid, xml, run = run_job(devserver, start_pilot, job, {"PATH": f"{LSM_STUBS}:{os.environ['PATH']}"})
    store = Path(devserver.storage_dir)
    check_outputs(job, xml, lambda lfn: store / deterministic_path("dev", lfn))
    check_traces(devserver, pandaid, job, "lsm", "LOCAL_DISK")
    # the job's traces (inputs, outputs, log) leave in one request, after the log
    assert len(devserver.requests("traces")) == 1, devserver.requests("traces")
    assert "lsm-put" in run.log_text()


@pytest.mark.parametrize("tool,endpoint,path", [("xrdcp", "root://127.0.0.1:1094", "//{rel}/"),
                                                ("gfal", "davs://127.0.0.1:1094", "/{rel}/")])
def test_storage_tool_job(devserver, start_pilot, storage_area, tool, endpoint, path):
    require_servers("xrootd", "rucio")
    rel, area = storage_area
    proto = {"endpoint": endpoint, "path": path.format(rel=rel), "flavour": "XROOTD", "id": 1}
    use_tool(devserver, tool, "E2E_XRD", storage_entry("E2E_XRD", [proto]))
    job = on_endpoint(sample_job(area, contents=INPUTS), "E2E_XRD")
    pandaid, xml, run = run_job(devserver, start_pilot, job, storage_env())
    check_outputs(job, xml, lambda lfn: area / deterministic_path("dev", lfn))
    assert all(meta["surl"].startswith(endpoint.split(":")[0] + "://") for meta in xml.values())
    check_traces(devserver, pandaid, job, tool, "E2E_XRD")
    # every transfer ran through the one command runner (its debug line names the tool binary)
    binary = "xrdcp" if tool == "xrdcp" else "gfal-copy"
    ended = [line for line in run.log_text().splitlines()
             if "pilot.util.commandrunner" in line and f"{binary} (PID " in line and "ended with 0" in line]
    assert len(ended) >= 3, run.log_text()[-3000:]  # the inputs (one bulk command), the output, the log


def test_rucio_job(devserver, start_pilot, tmp_path, monkeypatch):
    require_servers("xrootd", "rucio")
    from sitetools import _storage_env  # noqa: PLC2701 - the client settings of this test process
    _storage_env(monkeypatch)
    from rucio.client.uploadclient import UploadClient

    rse_dir = Path(STORAGE_DATA) / "rucio" / "xrd"
    proto = {"endpoint": "root://127.0.0.1:1094", "path": "//rucio/xrd/", "flavour": "XROOTD", "id": 1}
    use_tool(devserver, "rucio", "PILOT_XRD", storage_entry("PILOT_XRD", [proto]))
    job = on_endpoint(sample_job(tmp_path / "src", contents=INPUTS), "PILOT_XRD", scope="tests")
    items = []
    for lfn in job["inFiles"].split(","):
        src = tmp_path / "src" / deterministic_path("dev", lfn)
        items.append({"path": str(src), "rse": "PILOT_XRD", "did_scope": "tests", "did_name": lfn})
    UploadClient(logger=logging.getLogger("e2e.rucio")).upload(items)  # registered: found by list_replicas
    written = []
    try:
        pandaid, xml, run = run_job(devserver, start_pilot, job, storage_env())
        written = [rse_dir / deterministic_path("tests", lfn) for lfn in xml]
        check_outputs(job, xml, lambda lfn: rse_dir / deterministic_path("tests", lfn))
        check_traces(devserver, pandaid, job, "rucio", "PILOT_XRD")
        assert all(meta["surl"].startswith("root://127.0.0.1:1094//rucio/xrd/tests/") for meta in xml.values())
    finally:
        for path in written:  # outputs are not registered (PanDA registers them): just remove the bytes
            path.unlink(missing_ok=True)


def test_s3_job(devserver, start_pilot, s3_server, tmp_path):
    storage = s3_storage("E2E_S3", s3_server, path="/pilot/e2e", storage_type="DATADISK", deterministic=True)
    use_tool(devserver, "s3", "E2E_S3", storage)
    job = on_endpoint(sample_job(tmp_path / "src", contents=INPUTS), "E2E_S3")
    for lfn in job["inFiles"].split(","):
        key = "e2e/" + deterministic_path("dev", lfn)
        s3_server.client.upload_file(str(tmp_path / "src" / deterministic_path("dev", lfn)), "pilot", key)
    pandaid, xml, _ = run_job(devserver, start_pilot, job, storage_env())
    fetched = tmp_path / "fetched"
    fetched.mkdir()

    def where(lfn):
        path = fetched / lfn
        if not path.exists():
            s3_server.client.download_file("pilot", "e2e/" + deterministic_path("dev", lfn), str(path))
        return path

    check_outputs(job, xml, where)
    assert all(meta["surl"].startswith(f"{s3_server.url}/pilot/e2e/dev/") for meta in xml.values())
    check_traces(devserver, pandaid, job, "s3", "E2E_S3")
