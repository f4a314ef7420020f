"""Whole pilot jobs that move their files with each copytool against the real servers of ci/storage.

The dev server's queue is switched to one copytool (``set_queuedata``) and given a storage endpoint
(``set_storagedata``) whose protocols point at XRootD (root:// and davs:// on 1094) or at a local
directory; the pilot subprocess gets the storage client environment (what ci/storage/client-env.sh
exports) and the interpreter of the test, so rucio-clients must be importable there.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest

DATA_TESTS = Path(__file__).resolve().parents[2] / "integration" / "data"
sys.path.insert(0, str(DATA_TESTS))  # the skip/fail helper and client settings of the data integration tests

from s3site import s3_server, s3_storage  # noqa: E402,F401 - a private SeaweedFS S3 server (fixture)
from sitetools import STORAGE_DATA, STORAGE_ENV_DEFAULTS, require_servers  # noqa: E402

LSM_STUBS = DATA_TESTS / "lsm_stubs"


def storage_env(extra_path: str = "") -> dict:
    """Environment for the pilot subprocess: storage client settings, the test's venv first on PATH."""
    env = {key: os.environ.get(key) or value for key, value in STORAGE_ENV_DEFAULTS.items()
           if os.environ.get(key) or os.path.exists(value)}
    path = [p for p in (extra_path, os.path.dirname(sys.executable)) if p]
    env["PATH"] = os.pathsep.join(path + [os.environ.get("PATH", "")])
    return env


@pytest.fixture
def storage_area():
    """A fresh directory on the shared storage (``$STORAGE_DATA/e2e/<tag>``), removed afterwards."""
    tag = uuid.uuid4().hex[:10]
    rel = f"e2e/{tag}"
    path = Path(STORAGE_DATA) / rel
    path.mkdir(parents=True)
    yield rel, path
    shutil.rmtree(path, ignore_errors=True)


__all__ = ["LSM_STUBS", "STORAGE_DATA", "require_servers", "s3_storage", "storage_env"]
