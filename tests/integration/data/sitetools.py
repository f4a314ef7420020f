"""Helpers and fixtures: a local "site" (storage directories, queue/storage JSON files, a pilot config
through HARVESTER_PILOT_CONFIG (the way Harvester configures the pilot it embeds)."""

import dataclasses
import json
import logging
import os
import types
import zlib

import pytest

from pilot.copytool.common import deterministic_path
from pilot.info import infosys
from pilot.util.config import config


def adler(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xffffffff:08x}"


@pytest.fixture
def local_site(tmp_path, monkeypatch):
    storage = {"LOCAL_DATADISK": tmp_path / "storage" / "datadisk", "LOCAL_SCRATCH": tmp_path / "storage" / "scratch"}
    for path in storage.values():
        path.mkdir(parents=True)
    storages = {name: {"name": name, "id": i + 10, "type": "DATADISK", "is_deterministic": True, "state": "ACTIVE",
                       "arprotocols": {"read_lan": [{"endpoint": "file://", "path": str(p), "flavour": "POSIX"}],
                                       "write_lan": [{"endpoint": "file://", "path": str(p), "flavour": "POSIX"}]}}
                for i, (name, p) in enumerate(storage.items())}
    queue = {"nickname": "LOCAL_QUEUE", "panda_resource": "LOCAL_QUEUE", "atlas_site": "LOCAL", "state": "ACTIVE",
             "maxwdir": 2000, "copytools": {"mv": {"setup": ""}},
             "acopytools": {"pr": ["mv"], "pw": ["mv"], "pl": ["mv"]},
             "astorages": {"pr": ["LOCAL_DATADISK"], "pw": ["LOCAL_DATADISK"], "pl": ["LOCAL_SCRATCH"]},
             "direct_access_lan": True}
    (tmp_path / "LOCAL_QUEUE.json").write_text(json.dumps(queue))
    (tmp_path / "storages.json").write_text(json.dumps(storages))
    cfg = tmp_path / "pilot.cfg"
    cfg.write_text(f"""
[Information]
cache_dir: {tmp_path / 'cache'}
queuedata_url: file://{tmp_path}/{{pandaqueue}}.json
queuedata_cvmfs:
queues_cvmfs:
queues_url:
storages_url: {tmp_path}/storages.json
storages_cvmfs:

[Rucio]
url:
""")
    monkeypatch.setenv("HARVESTER_PILOT_CONFIG", str(cfg))
    config.reload()
    for attr, value in list(vars(infosys).items()):  # the shared instance is restored afterwards
        monkeypatch.setattr(infosys, attr, value)
    work = tmp_path / "work"
    work.mkdir()

    def put(store, scope, lfn, data):
        path = storage[store] / deterministic_path(scope, lfn)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    yield types.SimpleNamespace(tmp=tmp_path, storage=storage, work=work, put=put, queue="LOCAL_QUEUE")
    monkeypatch.delenv("HARVESTER_PILOT_CONFIG")
    config.reload()


# ---------------------------------------------------------------------------- real storage servers
STORAGE_DATA = "/tmp/pilot-storage/data"
PORTS = {"xrootd": 1094, "nginx": 18443, "rucio": 18580}


def _port_open(port: int) -> bool:
    import socket
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def require_servers(*names: str) -> None:
    """Skip when a server is down, unless CI=true (then fail: CI must run them)."""
    down = [n for n in names if not _port_open(PORTS[n])]
    if down:
        msg = f"storage server(s) not running: {', '.join(down)} (start with ci/storage/start-all.sh)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)


#: what ci/storage/client-env.sh exports (client side only: never the server's rucio.cfg)
STORAGE_ENV_DEFAULTS = {
    "RUCIO_CONFIG": "/tmp/pilot-storage/rucio/etc/rucio-client.cfg",
    "X509_CERT_DIR": "/tmp/pilot-storage/pki/certificates", "X509_USER_PROXY": "/tmp/pilot-storage/pki/x509up",
    "GFAL_PYTHONBIN": "/usr/bin/python3", "REQUESTS_CA_BUNDLE": "/tmp/pilot-storage/pki/ca-bundle.pem",
    "SSL_CERT_FILE": "/tmp/pilot-storage/pki/ca-bundle.pem", "CURL_CA_BUNDLE": "/tmp/pilot-storage/pki/ca-bundle.pem",
}


def _storage_env(monkeypatch) -> None:
    """What ci/storage/client-env.sh exports, for tests run without sourcing it."""
    for key, value in STORAGE_ENV_DEFAULTS.items():
        if not os.environ.get(key) and os.path.exists(value):
            monkeypatch.setenv(key, value)


def _proto(endpoint: str, path: str, pid: int) -> dict:
    return {"endpoint": endpoint, "path": path, "flavour": endpoint.split(":")[0].upper(), "id": pid}


REAL_STORAGES = {
    # the Rucio RSEs of ci/storage (same directories, hash lfn2pfn = our deterministic path)
    "PILOT_XRD": {"read_lan": [_proto("root://127.0.0.1:1094", "//rucio/xrd/", 1),
                               _proto("davs://127.0.0.1:1094", "/rucio/xrd/", 2),
                               _proto("file://", f"{STORAGE_DATA}/rucio/xrd/", 3)]},
    "PILOT_DAVS": {"read_lan": [_proto("davs://127.0.0.1:18443", "/rucio/davs/", 4)]},
    "PILOT_POSIX": {"read_lan": [_proto("file://", f"{STORAGE_DATA}/rucio/posix/", 5)]},
}


@pytest.fixture
def real_site(tmp_path, monkeypatch):
    """An InfoService whose storages are the real servers; helpers to register/upload test files."""
    import uuid

    from pilot.info import InfoService

    require_servers("xrootd", "nginx", "rucio")
    _storage_env(monkeypatch)
    monkeypatch.setenv("PILOT_USE_RUCIO_TRACES", "false")
    storages = {}
    for i, (name, protos) in enumerate(REAL_STORAGES.items()):
        storages[name] = {"name": name, "id": 100 + i, "type": "DATADISK", "is_deterministic": True,
                          "arprotocols": {"read_lan": protos["read_lan"], "write_lan": protos["read_lan"]}}
    queue = {"nickname": "REAL_QUEUE", "atlas_site": "PILOT", "state": "ACTIVE", "maxwdir": 4000,
             "copytools": {"xrdcp": {}, "gfal": {}, "rucio": {}, "mv": {}},
             "acopytools": {"pr": ["xrdcp"], "pw": ["xrdcp"]},
             "astorages": {"pr": ["PILOT_XRD", "PILOT_POSIX"], "pw": ["PILOT_XRD"]}}
    (tmp_path / "q.json").write_text(json.dumps(queue))
    (tmp_path / "s.json").write_text(json.dumps(storages))
    info = InfoService().init("REAL_QUEUE", queuedata_path=str(tmp_path / "q.json"),
                              storagedata_path=str(tmp_path / "s.json"), cache_dir=str(tmp_path / "cache"),
                              use_config=False)
    work = tmp_path / "work"
    work.mkdir()
    tag = uuid.uuid4().hex[:10]

    def upload(data: bytes, rse: str = "PILOT_XRD", name: str = "", scope: str = "tests") -> FileSpecArgs:
        from rucio.client.uploadclient import UploadClient
        name = name or f"h4-{tag}-{uuid.uuid4().hex[:6]}.dat"
        path = tmp_path / f"up-{name}"
        path.write_bytes(data)
        UploadClient(logger=logging.getLogger("rucio.test")).upload(
            [{"path": str(path), "rse": rse, "did_scope": scope, "did_name": name}])
        return FileSpecArgs(scope, name, data)

    def disk_path(rse: str, scope: str, name: str) -> str:
        sub = {"PILOT_XRD": "rucio/xrd", "PILOT_POSIX": "rucio/posix", "PILOT_DAVS": "rucio/davs"}[rse]
        return os.path.join(STORAGE_DATA, sub, deterministic_path(scope, name))

    return types.SimpleNamespace(info=info, work=work, tmp=tmp_path, tag=tag, upload=upload, disk_path=disk_path)


@dataclasses.dataclass
class FileSpecArgs:
    scope: str
    lfn: str
    data: bytes
