"""The s3 copytool through the Data API against a real S3 server (SeaweedFS, see s3site.py)."""

import json
import os

import pytest
from s3site import s3_server, s3_storage  # noqa: F401 - fixture
from sitetools import adler

from pilot.api.data import StageInClient, StageOutClient
from pilot.api.staging import RetryPolicy
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool.common import deterministic_path
from pilot.copytool.s3 import split_url
from pilot.info import FileSpec, InfoService

pytestmark = pytest.mark.storage
FAST = RetryPolicy(attempts=2, base=0.05, cap=0.2)


@pytest.fixture
def s3_site(s3_server, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PILOT_USE_RUCIO_TRACES", "false")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "PANDA_PILOT_AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    storages = {"S3_LOGS": s3_storage("S3_LOGS", s3_server),
                "S3_DISK": s3_storage("S3_DISK", s3_server, path="/pilot/disk", storage_type="DATADISK",
                                      deterministic=True),
                "S3_BADKEY": s3_storage("S3_BADKEY", s3_server, secret="wrong-secret"),
                "S3_DOWN": s3_storage("S3_DOWN", type("Down", (), {"url": "s3://127.0.0.1:1"})())}
    queue = {"nickname": "S3_QUEUE", "state": "ACTIVE", "maxwdir": 1000, "copytools": {"s3": {}},
             "acopytools": {"pr": ["s3"], "pw": ["s3"], "pl": ["s3"]},
             "astorages": {"pr": ["S3_DISK"], "pw": ["S3_DISK"], "pl": ["S3_LOGS"]}}
    (tmp_path / "q.json").write_text(json.dumps(queue))
    (tmp_path / "s.json").write_text(json.dumps(storages))
    info = InfoService().init("S3_QUEUE", queuedata_path=str(tmp_path / "q.json"),
                              storagedata_path=str(tmp_path / "s.json"), cache_dir=str(tmp_path / "cache"),
                              use_config=False)
    work = tmp_path / "work"
    work.mkdir()
    s3_server.info, s3_server.work = info, work
    return s3_server


def out(site, lfn, data, **kw):
    (site.work / lfn).write_bytes(data)
    return FileSpec(filetype="output", scope="tests", lfn=lfn, workdir=str(site.work), **kw)


def test_split_url():
    assert split_url("s3://host:9000/bucket/a/b.dat") == ("https://host:9000", "bucket", "a/b.dat")
    assert split_url("s3://host:9000/bucket/a/b.dat", secure=False)[0] == "http://host:9000"
    assert split_url("https://host/b//k")[1:] == ("b", "/k")
    with pytest.raises(PilotException):
        split_url("s3://host/bucket-only")


def test_roundtrip_deterministic_storage(s3_site):
    data = os.urandom(300_000)
    f = out(s3_site, "s3-data.dat", data)
    StageOutClient(s3_site.info, acopytools="s3", retry_policy=FAST).transfer([f], activity="pw")
    key = "disk/" + deterministic_path("tests", "s3-data.dat")
    assert f.status == "transferred" and f.surl == f"{s3_site.url}/pilot/{key}"
    head = s3_site.client.head_object(Bucket="pilot", Key=key)
    assert head["ContentLength"] == len(data) and head["Metadata"]["adler32"] == adler(data)
    os.unlink(s3_site.work / "s3-data.dat")
    back = FileSpec(type="input", scope="tests", lfn="s3-data.dat", ddmendpoint="S3_DISK", filesize=len(data),
                    checksum={"adler32": adler(data)}, workdir=str(s3_site.work))
    StageInClient(s3_site.info, acopytools="s3", retry_policy=FAST).transfer([back], activity="pr")
    assert back.status == "transferred" and (s3_site.work / "s3-data.dat").read_bytes() == data


def test_log_to_object_store_uses_the_lfn_as_key(s3_site):
    f = out(s3_site, "job.log.tgz", b"log bytes" * 100)
    StageOutClient(s3_site.info, acopytools="s3", retry_policy=FAST).transfer([f], activity=["pl", "pw"])
    assert f.surl == f"{s3_site.url}/pilot/job.log.tgz"
    assert s3_site.client.get_object(Bucket="pilot", Key="job.log.tgz")["Body"].read() == b"log bytes" * 100


def test_corrupt_object_is_1171(s3_site):
    data = b"the real content"
    s3_site.client.put_object(Bucket="pilot", Key="disk/" + deterministic_path("tests", "bad.dat"),
                              Body=b"the fake content")
    f = FileSpec(type="input", scope="tests", lfn="bad.dat", ddmendpoint="S3_DISK", filesize=len(data),
                 checksum={"adler32": adler(data)}, workdir=str(s3_site.work))
    with pytest.raises(PilotException) as err:
        StageInClient(s3_site.info, acopytools="s3", retry_policy=FAST).transfer([f], activity="pr")
    assert err.value.get_error_code() == ErrorCodes.GETADMISMATCH and not (s3_site.work / "bad.dat").exists()


def test_missing_object_is_1331(s3_site):
    f = FileSpec(type="input", scope="tests", lfn="never-there.dat", ddmendpoint="S3_DISK",
                 workdir=str(s3_site.work))
    with pytest.raises(PilotException) as err:
        StageInClient(s3_site.info, acopytools="s3", retry_policy=FAST).transfer([f], activity="pr")
    assert err.value.get_error_code() == ErrorCodes.MISSINGINPUTFILE


def test_wrong_secret_is_1364(s3_site):
    f = out(s3_site, "denied.dat", b"x" * 10, ddmendpoint="S3_BADKEY")
    with pytest.raises(PilotException) as err:
        StageOutClient(s3_site.info, acopytools="s3", retry_policy=FAST).transfer([f], activity="pw")
    assert err.value.get_error_code() == ErrorCodes.MISSINGCREDENTIALS


def test_server_down_is_service_error_then_alternative(s3_site):
    f = out(s3_site, "alt.dat", b"y" * 10, ddmendpoint="S3_DOWN")
    with pytest.raises(PilotException) as err:
        StageOutClient(s3_site.info, acopytools="s3", retry_policy=FAST).transfer([f], activity="pw")
    assert err.value.get_error_code() == ErrorCodes.SERVICENOTAVAILABLE
    g = out(s3_site, "alt.dat", b"y" * 10, ddmendpoint="S3_DOWN", ddmendpoint_alt="S3_LOGS")
    StageOutClient(s3_site.info, acopytools="s3", retry_policy=FAST).transfer([g], activity="pw")
    assert g.status == "transferred" and g.is_altstaged


class StopAfter:
    """A stop event that reads as set from its ``n``-th look on (the transfer is then in the middle)."""

    def __init__(self, n: int):
        self.n = n
        self.looks = 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks >= self.n

    def wait(self, timeout=None) -> bool:
        return self.is_set()

    def set(self) -> None:
        self.n = 0


@pytest.mark.parametrize("direction", ["upload", "download"])
def test_cancel_stops_the_object_being_moved(s3_site, direction):
    """boto3's progress callback sees the stop event: a 24 MB object stops after a few chunks."""
    from pilot.copytool import s3

    data = os.urandom(24 * 1024 * 1024)
    client = s3_site.client
    key = f"cancel-{direction}.dat"
    src = s3_site.work / key
    src.write_bytes(data)
    stop = StopAfter(3)
    with pytest.raises(PilotException) as err:
        if direction == "upload":
            s3.upload(client, "pilot", key, str(src), f"{s3_site.url}/pilot/{key}", {}, stop=stop)
        else:
            client.put_object(Bucket="pilot", Key=key, Body=data)
            s3.download(client, "pilot", key, str(s3_site.work / "back.dat"), f"{s3_site.url}/pilot/{key}",
                        stop=stop)
    assert err.value.state == "CANCELLED" and "cancelled" in err.value.diag
    assert err.value.get_error_code() == (ErrorCodes.STAGEOUTFAILED if direction == "upload"
                                          else ErrorCodes.STAGEINFAILED)
    assert stop.looks < 24, "the transfer ran to its end before looking at the stop event"
    if direction == "download":
        assert not (s3_site.work / "back.dat").exists() and not (s3_site.work / "back.dat.part").exists()
