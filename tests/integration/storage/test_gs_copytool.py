"""The ``gs`` copytool against a real GCS-protocol server on loopback (PyPI's gcp-storage-emulator).

The emulator runs in its own process (``python -m gcp_storage_emulator start --in-memory``); the
copytool finds it through ``STORAGE_EMULATOR_HOST`` as Google's clients do. Stage-out, stage-in,
no-overwrite, a missing object and the Data API's call shape are exercised over real HTTP.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import zlib

import pytest

import gcp_storage_emulator  # noqa: F401  (the test needs the server package: requirements-test.txt)
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool import gs
from pilot.info import FileSpec
from pilot.util.https import HttpClient

BUCKET = "pilot-test-bucket"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("gcs") / "emulator.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                                 "--port", str(port), "--in-memory", "--default-bucket", BUCKET],
                                stdout=handle, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    client = HttpClient(retries=1, timeout=5, connect_timeout=2)
    deadline = time.monotonic() + 30
    while True:  # wait for the health check
        try:
            client.request(endpoint + "/", None, method="GET", retries=1)
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError(f"emulator did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
    try:
        yield endpoint, client
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def env(emulator, monkeypatch):
    endpoint, client = emulator
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint.replace("http://", ""))
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN", raising=False)
    return endpoint, client


def adler32(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xffffffff:08x}"


def test_round_trip(env, tmp_path):
    endpoint, client = env
    work = tmp_path / "out"
    work.mkdir()
    data = os.urandom(200_000)
    (work / "result.root").write_bytes(data)
    spec = FileSpec(lfn="result.root", filetype="output", workdir=str(work), filesize=len(data),
                    checksum={"adler32": adler32(data)}, surl=f"gs://{BUCKET}/user/x/result.root")
    gs.copy_out([spec], http=client)
    assert spec.status == "transferred" and spec.status_code == 0
    meta = json.loads(client.request(f"{endpoint}/storage/v1/b/{BUCKET}/o/user%2Fx%2Fresult.root", None,
                                     method="GET"))
    assert int(meta["size"]) == len(data) and meta["metadata"]["adler32"] == adler32(data)
    back = tmp_path / "in"
    back.mkdir()
    inspec = FileSpec(lfn="result.root", workdir=str(back), turl=f"gs://{BUCKET}/user/x/result.root")
    gs.copy_in([inspec], http=client)
    assert (back / "result.root").read_bytes() == data and inspec.status == "transferred"


def test_https_url_form_and_shared_client(env, tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    (work / "a.txt").write_bytes(b"hello gcs")
    gs.copy_out([FileSpec(lfn="a.txt", filetype="output", workdir=str(work),
                          surl=f"https://storage.googleapis.com/{BUCKET}/a.txt")])
    back = tmp_path / "b"
    back.mkdir()
    gs.copy_in([FileSpec(lfn="a.txt", workdir=str(back), turl=f"gs://{BUCKET}/a.txt")])
    assert (back / "a.txt").read_bytes() == b"hello gcs"


def test_existing_object_is_never_replaced(env, tmp_path):
    endpoint, client = env
    work = tmp_path / "w"
    work.mkdir()
    (work / "log.tgz").write_bytes(b"first")
    first = FileSpec(lfn="log.tgz", filetype="log", workdir=str(work), checksum={"adler32": adler32(b"first")},
                     surl=f"gs://{BUCKET}/logs/log.tgz")
    gs.copy_out([first], http=client)
    again = FileSpec(lfn="log.tgz", filetype="log", workdir=str(work), checksum={"adler32": adler32(b"first")},
                     surl=f"gs://{BUCKET}/logs/log.tgz")
    gs.copy_out([again], http=client)  # the same file: a success without a second upload
    assert again.status == "transferred"
    (work / "log.tgz").write_bytes(b"other")
    other = FileSpec(lfn="log.tgz", filetype="log", workdir=str(work), checksum={"adler32": adler32(b"other")},
                     surl=f"gs://{BUCKET}/logs/log.tgz")
    with pytest.raises(PilotException) as err:
        gs.copy_out([other], http=client)
    assert err.value.get_error_code() == ErrorCodes.FILEEXISTS and other.status == "failed"
    stored = client.request(f"{endpoint}/download/storage/v1/b/{BUCKET}/o/logs%2Flog.tgz?alt=media", None,
                            method="GET")
    assert stored == b"first"


def test_missing_object_fails_stage_in(env, tmp_path):
    spec = FileSpec(lfn="none.root", workdir=str(tmp_path), turl=f"gs://{BUCKET}/no/such/none.root")
    with pytest.raises(PilotException) as err:
        gs.copy_in([spec], http=env[1])
    assert spec.status == "failed" and "No such file" in err.value.diag
    assert not (tmp_path / "none.root").exists()


def test_bad_url_is_a_protocol_error(tmp_path):
    with pytest.raises(PilotException) as err:
        gs.copy_in([FileSpec(lfn="x", workdir=str(tmp_path), turl="root://host//x")])
    assert err.value.get_error_code() == ErrorCodes.NOSTORAGEPROTOCOL


def test_loaded_as_a_plugin():
    from pilot.common.pluginfactory import load_copytool

    module = load_copytool("gs")
    assert module is gs and module.allowed_schemas == ["gs", "https"]


def test_token_header(monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.token")
    assert gs.auth_headers() == {"Authorization": "Bearer ya29.token"}
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN")
    token = tmp_path / "token"
    token.write_text("ya29.fromfile\n")
    monkeypatch.setenv("GCS_ACCESS_TOKEN_FILE", str(token))
    assert gs.auth_headers() == {"Authorization": "Bearer ya29.fromfile"}
    monkeypatch.delenv("GCS_ACCESS_TOKEN_FILE")
    assert gs.auth_headers() == {}
    assert gs.service_endpoint({}) == "https://storage.googleapis.com"
    assert gs.service_endpoint({"STORAGE_EMULATOR_HOST": "localhost:9023"}) == "http://localhost:9023"


def test_data_api_harvester_call_shape(env, tmp_path, monkeypatch):
    """StageOutClient/StageInClient with acopytools={'default': ['gs']}, as Harvester builds them."""
    from pilot.api.data import StageInClient, StageOutClient
    from pilot.info import InfoService

    monkeypatch.setenv("PILOT_USE_RUCIO_TRACES", "False")
    storages = {"GCS_DISK": {"name": "GCS_DISK", "id": 7, "is_deterministic": True, "type": "DISK",
                             "arprotocols": {"read_lan": [{"endpoint": f"gs://{BUCKET}", "path": "/atlas", "id": 1}],
                                             "write_lan": [{"endpoint": f"gs://{BUCKET}", "path": "/atlas", "id": 2}]}}}
    queue = {"nickname": "GQ", "atlas_site": "SITE", "state": "ACTIVE", "maxwdir": 100,
             "acopytools": {"pr": ["gs"], "pw": ["gs"], "pl": ["gs"]},
             "astorages": {"pr": ["GCS_DISK"], "pw": ["GCS_DISK"], "pl": ["GCS_DISK"]}, "copytools": {"gs": {}}}
    (tmp_path / "q.json").write_text(json.dumps(queue))
    (tmp_path / "s.json").write_text(json.dumps(storages))
    info = InfoService().init("GQ", queuedata_path=str(tmp_path / "q.json"), storagedata_url=str(tmp_path / "s.json"),
                              cache_dir=str(tmp_path / "cache"), use_config=False)
    info.queuedata.direct_access_lan = info.queuedata.direct_access_wan = False
    out_dir = tmp_path / "job"
    out_dir.mkdir()
    data = os.urandom(5000)
    (out_dir / "out.root").write_bytes(data)
    out = FileSpec(type="output", scope="user.pilot", lfn="out.root", workdir=str(out_dir), ddmendpoint="GCS_DISK",
                   dataset="user.pilot.ds")
    StageOutClient(info, acopytools={"default": ["gs"]}).transfer([out])
    assert out.status == "transferred" and out.status_code == 0 and out.surl.startswith(f"gs://{BUCKET}/atlas/user/")
    in_dir = tmp_path / "harvester"
    in_dir.mkdir()
    spec = FileSpec(type="input", scope="user.pilot", lfn="out.root", ddmendpoint="GCS_DISK", workdir=str(in_dir),
                    filesize=len(data), checksum={"adler32": adler32(data)}, guid="1234", dataset="user.pilot.ds")
    result = StageInClient(info, acopytools={"default": ["gs"]}).transfer([spec], use_vp=False)
    assert [f.status_code for f in result] == [0] and (in_dir / "out.root").read_bytes() == data
