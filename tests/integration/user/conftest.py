"""Fixtures for the experiment plug-in integration tests: queue data, a fake CVMFS tree, bubblewrap."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakesite import make_fake_cvmfs  # noqa: E402

from pilot.info import infosys  # noqa: E402
from pilot.info.queuedata import QueueData  # noqa: E402


@pytest.fixture
def queue(monkeypatch):
    """Set the pilot-wide queue data; call with queuedata fields (e.g. container_type='bwrap:pilot')."""

    def make(**fields):
        record = {"nickname": "TEST_QUEUE", "panda_resource": "TEST_QUEUE", "state": "ACTIVE", **fields}
        queuedata = QueueData.from_dict(record)
        monkeypatch.setattr(infosys, "queuedata", queuedata)
        return queuedata

    make()
    return make


@pytest.fixture
def cvmfs(tmp_path, monkeypatch):
    """A fake CVMFS tree (ALRB, AtlasSetup, release 21.0.15, DBRelease 31.8.1) used through ATLAS_SW_BASE."""
    root = make_fake_cvmfs(tmp_path / "cvmfs", dbreleases=("31.8.1",))
    monkeypatch.setenv("ATLAS_SW_BASE", str(root))
    monkeypatch.delenv("VO_ATLAS_SW_DIR", raising=False)
    monkeypatch.delenv("ATLAS_DBREL_DWNLD", raising=False)
    return root


@pytest.fixture
def bwrap():
    """The bubblewrap executable (installed by scripts/install-test-deps.sh)."""
    path = shutil.which("bwrap")
    assert path, "bubblewrap is not installed: run scripts/install-test-deps.sh"
    return path
