"""The objectstore copytool through the Data API: a real S3 server (SeaweedFS) registered in the real
test Rucio as an object-store RSE (see ossite.py). Uploads are registered, downloads resolved by Rucio."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from ossite import os_rse, os_storage  # noqa: F401 - fixture
from s3site import ACCESS_KEY, SECRET_KEY, s3_server  # noqa: F401 - fixture
from sitetools import _storage_env, adler

from pilot.api.data import StageInClient, StageOutClient
from pilot.api.staging import RetryPolicy
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.info import FileSpec, InfoService

pytestmark = pytest.mark.storage
TOOLS_OUT = {"pw": ["objectstore"]}
TOOLS_IN = {"pr": ["objectstore"]}


class CountingRetry(RetryPolicy):
    """The Data API's retry policy, fast, counting the waits before another attempt."""

    def __init__(self) -> None:
        super().__init__(attempts=3, base=0.05, cap=0.2)
        self.waits = 0

    def wait(self, attempt, stop=None):
        self.waits += 1
        return super().wait(attempt, stop)


class KeyServer:
    """What the pilot's communicator offers the tool: getKeyPair (names -> the SeaweedFS keys)."""

    def __init__(self) -> None:
        self.calls = []

    def get_key_pair(self, public_name: str, private_name: str) -> dict:
        self.calls.append((public_name, private_name))
        if (public_name, private_name) != ("os-public", "os-private"):
            return {"StatusCode": 80, "errorDialog": "no such key"}
        return {"StatusCode": 0, "publicKey": ACCESS_KEY, "privateKey": SECRET_KEY}


@pytest.fixture
def site(os_rse, tmp_path, monkeypatch):  # noqa: F811
    _storage_env(monkeypatch)
    monkeypatch.setenv("PILOT_USE_RUCIO_TRACES", "false")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "PANDA_PILOT_AWS_PROFILE",
                "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_IS_SECURE"):
        monkeypatch.delenv(key, raising=False)
    rse = os_rse.name
    down = type("Down", (), {"url": "s3://127.0.0.1:1"})()
    storages = {rse: os_storage(rse, os_rse.server), "OS_NAMED": os_storage("OS_NAMED", os_rse.server, True),
                "OS_DOWN": os_storage("OS_DOWN", down)}
    queue = {"nickname": "OS_QUEUE", "state": "ACTIVE", "maxwdir": 1000, "copytools": {"objectstore": {}},
             "acopytools": {"pr": ["objectstore"], "pw": ["objectstore"]},
             "astorages": {"pr": [rse], "pw": [rse]}}
    (tmp_path / "q.json").write_text(json.dumps(queue))
    (tmp_path / "s.json").write_text(json.dumps(storages))
    info = InfoService().init("OS_QUEUE", queuedata_path=str(tmp_path / "q.json"),
                              storagedata_path=str(tmp_path / "s.json"), cache_dir=str(tmp_path / "cache"),
                              use_config=False)
    work = tmp_path / "work"
    work.mkdir()
    return type("Site", (), {"info": info, "work": work, "rse": rse, "os": os_rse, "s3": os_rse.server.client,
                             "bucket": os_rse.server.bucket, "tmp": tmp_path})()


def known_to_rucio(site, lfn: str) -> bool:
    from rucio.common.exception import DataIdentifierNotFound
    try:
        return bool(list(site.os.rucio.list_replicas([{"scope": "tests", "name": lfn}])))
    except DataIdentifierNotFound:
        return False


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}.dat"


def output(site, data: bytes, lfn: str = "", **kw) -> FileSpec:
    lfn = lfn or unique("os-out")
    (site.work / lfn).write_bytes(data)
    return FileSpec(filetype="output", scope="tests", lfn=lfn, workdir=str(site.work), guid=str(uuid.uuid4()), **kw)


def stage_out(site, files, **kw):
    return StageOutClient(site.info, acopytools=TOOLS_OUT, retry_policy=kw.pop("retry", CountingRetry())) \
        .transfer(files, activity="pw", **kw)


def stage_in(site, fspec, retry=None):
    client = StageInClient(site.info, acopytools=TOOLS_IN, retry_policy=retry or CountingRetry())
    return client.transfer([fspec], activity="pr")


def input_spec(site, lfn: str, **kw) -> FileSpec:
    dest = site.tmp / "in"
    dest.mkdir(exist_ok=True)
    return FileSpec(type="input", scope="tests", lfn=lfn, workdir=str(dest), **kw)


def test_upload_is_registered_and_read_back_through_rucio(site):
    data = os.urandom(250_000)
    f = output(site, data)
    stage_out(site, [f])
    key = site.os.key(f.lfn)
    assert f.status == "transferred" and f.status_code == 0
    assert f.surl == f.turl == f"{site.os.server.url}/{site.bucket}/{key}"
    assert site.s3.get_object(Bucket=site.bucket, Key=key)["Body"].read() == data
    [replica] = site.os.rucio.list_replicas([{"scope": "tests", "name": f.lfn}], schemes=["s3"])
    assert replica["adler32"] == adler(data) == f.checksum["adler32"] and replica["bytes"] == len(data)
    assert replica["rses"] == {site.rse: [f.surl]}

    back = input_spec(site, f.lfn)  # no size or checksum: both come from Rucio
    stage_in(site, back)
    assert back.status == "transferred" and back.turl == f.surl and back.ddmendpoint == site.rse
    assert (site.tmp / "in" / f.lfn).read_bytes() == data
    assert back.checksum["adler32"] == adler(data) and back.filesize == len(data)


def test_object_missing_behind_rucio_is_1331_without_retry(site):
    f = output(site, b"soon gone" * 50)
    stage_out(site, [f])
    site.s3.delete_object(Bucket=site.bucket, Key=site.os.key(f.lfn))
    retry = CountingRetry()
    with pytest.raises(PilotException) as err:
        stage_in(site, input_spec(site, f.lfn), retry)
    assert err.value.get_error_code() == ErrorCodes.MISSINGINPUTFILE
    assert retry.waits == 0


def test_object_changed_behind_rucio_is_1171(site):
    data = b"the real content, registered" * 20
    f = output(site, data)
    stage_out(site, [f])
    site.s3.put_object(Bucket=site.bucket, Key=site.os.key(f.lfn), Body=data[::-1])  # same size, other bytes
    back = input_spec(site, f.lfn)
    with pytest.raises(PilotException) as err:
        stage_in(site, back)
    assert err.value.get_error_code() == ErrorCodes.GETADMISMATCH
    assert back.status_code == ErrorCodes.GETADMISMATCH and not (site.tmp / "in" / f.lfn).exists()


def test_unreachable_object_store_is_service_error(site):
    f = output(site, b"nowhere to go", ddmendpoint="OS_DOWN")
    with pytest.raises(PilotException) as err:
        stage_out(site, [f])
    assert err.value.get_error_code() == ErrorCodes.SERVICENOTAVAILABLE
    assert not known_to_rucio(site, f.lfn)  # nothing registered

    lfn = unique("os-down")
    back = input_spec(site, lfn, ddmendpoint="OS_DOWN")
    back.replicas = [{"ddmendpoint": "OS_DOWN", "pfn": f"s3://127.0.0.1:1/pilot/os/{lfn}", "domain": "lan"}]
    with pytest.raises(PilotException) as err:
        stage_in(site, back)
    assert err.value.get_error_code() == ErrorCodes.SERVICENOTAVAILABLE


def test_keys_from_getkeypair_else_environment_else_refused(site, monkeypatch):
    keys = KeyServer()
    f = output(site, b"keys by name" * 10, ddmendpoint="OS_NAMED")
    stage_out(site, [f], communicator=keys, no_register=True)
    assert f.status == "transferred" and keys.calls == [("os-public", "os-private")]

    g = output(site, b"no key server" * 10, ddmendpoint="OS_NAMED")
    with pytest.raises(PilotException) as err:  # the key names are not keys: the store refuses them
        stage_out(site, [g], no_register=True)
    assert err.value.get_error_code() == ErrorCodes.MISSINGCREDENTIALS

    monkeypatch.setenv("S3_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("S3_SECRET_KEY", SECRET_KEY)
    h = output(site, b"keys from the environment" * 10, ddmendpoint="OS_NAMED")
    stage_out(site, [h], no_register=True)
    assert h.status == "transferred"
    assert site.s3.head_object(Bucket=site.bucket, Key=site.os.key(h.lfn))["ContentLength"] == 250
