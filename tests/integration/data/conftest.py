"""A local "site": storage directories on disk, queue/storage JSON files, and a pilot config pointing at them
through HARVESTER_PILOT_CONFIG (the way Harvester configures the pilot it embeds)."""

import json
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
