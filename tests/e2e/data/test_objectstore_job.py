"""A whole pilot job whose files move with the objectstore copytool: inputs found through Rucio on an
object-store RSE (SeaweedFS), outputs and log uploaded there and registered in Rucio."""

from __future__ import annotations

import zlib

import pytest
from ossite import os_rse, os_storage  # noqa: F401 - the session's object-store RSE (fixture)
from s3site import ACCESS_KEY, SECRET_KEY

from pilot.devserver.samples import sample_job

from .conftest import s3_server, storage_env  # noqa: F401 - fixture
from .test_copytool_jobs import INPUTS, check_outputs, check_traces, on_endpoint, run_job, use_tool

pytestmark = pytest.mark.storage


def adler(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xffffffff:08x}"


def test_objectstore_job(devserver, start_pilot, os_rse, tmp_path):  # noqa: F811
    rse, server = os_rse.name, os_rse.server
    # the queue names the keys (getKeyPair style); the pilot gets them from S3_ACCESS_KEY / S3_SECRET_KEY
    use_tool(devserver, "objectstore", rse, os_storage(rse, server, key_names=True))
    job = on_endpoint(sample_job(tmp_path / "src", contents=INPUTS), rse, scope="tests")
    inputs = job["inFiles"].split(",")
    for lfn, data in zip(inputs, INPUTS):
        server.client.put_object(Bucket=server.bucket, Key=os_rse.key(lfn), Body=data)
    os_rse.rucio.add_replicas(rse=rse, files=[  # one write for both inputs: found by list_replicas
        {"scope": "tests", "name": lfn, "bytes": len(data), "adler32": adler(data),
         "pfn": f"{server.url}/{server.bucket}/{os_rse.key(lfn)}"} for lfn, data in zip(inputs, INPUTS)])
    env = dict(storage_env(), S3_ACCESS_KEY=ACCESS_KEY, S3_SECRET_KEY=SECRET_KEY)

    pandaid, xml, run = run_job(devserver, start_pilot, job, env)
    fetched = tmp_path / "fetched"
    fetched.mkdir()

    def where(lfn):
        path = fetched / lfn
        if not path.exists():
            server.client.download_file(server.bucket, os_rse.key(lfn), str(path))
        return path

    check_outputs(job, xml, where)
    check_traces(devserver, pandaid, job, "objectstore", rse)
    assert "S3 keys for" in run.log_text() and "from environment" in run.log_text()
    for lfn, meta in xml.items():  # outputs and log are registered with the adler32 of the final update
        assert meta["surl"] == f"{server.url}/{server.bucket}/{os_rse.key(lfn)}"
        [replica] = os_rse.rucio.list_replicas([{"scope": "tests", "name": lfn}], schemes=["s3"])
        assert replica["adler32"] == meta["adler32"] and replica["rses"] == {rse: [meta["surl"]]}
