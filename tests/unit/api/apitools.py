"""Helpers and fixtures for the Data API tests: an information service on temp files and scriptable fake copytools."""

import json
import os
import sys
import threading
import types
import zlib

import pytest

from pilot.api.staging import RetryPolicy
from pilot.common.exception import PilotException
from pilot.copytool.common import deterministic_path, local_file_path, transfer_error
from pilot.info import InfoService


def adler(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xffffffff:08x}"


@pytest.fixture
def site(tmp_path):
    """An InfoService with storages DISK (file://), DISK2 (file://) and queue Q (mv tools)."""
    stores = {name: tmp_path / name.lower() for name in ("DISK", "DISK2")}
    for path in stores.values():
        path.mkdir()
    storages = {name: {"name": name, "id": i + 1, "is_deterministic": True,
                       "arprotocols": {"read_lan": [{"endpoint": "file://", "path": str(p), "id": 1}],
                                       "write_lan": [{"endpoint": "file://", "path": str(p), "id": 2}]}}
                for i, (name, p) in enumerate(stores.items())}
    queue = {"nickname": "Q", "atlas_site": "SITE", "state": "ACTIVE", "maxwdir": 100,
             "acopytools": {"pr": ["mv"], "pw": ["mv"], "pl": ["mv"]},
             "astorages": {"pr": ["DISK"], "pw": ["DISK"]}, "copytools": {"mv": {"setup": ""}}}
    (tmp_path / "q.json").write_text(json.dumps(queue))
    (tmp_path / "s.json").write_text(json.dumps(storages))
    info = InfoService().init("Q", queuedata_path=str(tmp_path / "q.json"), storagedata_url=str(tmp_path / "s.json"),
                              cache_dir=str(tmp_path / "cache"), use_config=False)
    work = tmp_path / "work"
    work.mkdir()
    ns = types.SimpleNamespace(info=info, stores=stores, work=work, tmp=tmp_path)

    def put(store, scope, lfn, data):
        path = stores[store] / deterministic_path(scope, lfn)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    ns.put = put
    return ns


FAST = RetryPolicy(attempts=3, base=0.001, cap=0.01)


class FakeTool(types.ModuleType):
    """A copytool whose outcome per call is scripted: ``script[lfn]`` is a list of 'ok' or error texts."""

    def __init__(self, name="fakect.tool"):
        super().__init__(name)
        self.script = {}
        self.calls = []
        self.require_replicas = False
        self.require_input_protocols = True
        self.require_protocols = True
        self.allowed_schemas = None
        self.check_availablespace = True
        self.remote_checksum = None
        self.delay = 0.0
        self.lock = threading.Lock()

    def _outcome(self, fspec):
        with self.lock:
            self.calls.append((fspec.lfn, fspec.turl or fspec.surl))
            steps = self.script.get(fspec.lfn, ["ok"])
            return steps.pop(0) if len(steps) > 1 else steps[0]

    def copy_in(self, files, **kwargs):
        for fspec in files:
            outcome = self._outcome(fspec)
            if self.delay:
                threading.Event().wait(self.delay)
            if outcome != "ok":
                raise transfer_error(outcome, is_stagein=True)
            src = fspec.turl[len("file://"):] if fspec.turl.startswith("file://") else None
            with open(src, "rb") as handle:
                data = handle.read()
            with open(local_file_path(fspec, kwargs.get("workdir", "")), "wb") as handle:
                handle.write(data)
            fspec.status, fspec.status_code = "transferred", 0
        return files

    def copy_out(self, files, **kwargs):
        for fspec in files:
            outcome = self._outcome(fspec)
            if outcome != "ok":
                raise transfer_error(outcome, is_stagein=False)
            if not fspec.surl.startswith("file://"):
                raise PilotException("no file surl", code=1137)
            dst = fspec.surl[len("file://"):]
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(local_file_path(fspec, kwargs.get("workdir", "")), "rb") as src, open(dst, "wb") as out:
                out.write(src.read())
            if self.remote_checksum:
                fspec.remote_checksum = {"adler32": self.remote_checksum}
            fspec.status, fspec.status_code = "transferred", 0
        return files

    def is_valid_for_copy_in(self, files):
        return True

    def is_valid_for_copy_out(self, files):
        return True


@pytest.fixture
def fake_tools(monkeypatch):
    """Two fake copytools reachable under the names 'fake' and 'fake2'."""
    tools = {}
    for name in ("fake", "fake2"):
        module = FakeTool(f"fakect.{name}")
        monkeypatch.setitem(sys.modules, f"fakect.{name}", module)
        tools[name] = module
    return tools


ALIASES = {"fake": "fakect.fake", "fake2": "fakect.fake2"}


@pytest.fixture(autouse=True)
def no_default_traces(monkeypatch):
    """Tests pass their own trace URL/client; never send to the configured production URL."""
    monkeypatch.setenv("PILOT_USE_RUCIO_TRACES", "false")
