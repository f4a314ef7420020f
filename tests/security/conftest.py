"""Fixtures for the security tests: a dev server and a pilot in its own PID namespace, as root and as a user.

Every test that takes ``secure_pilot`` runs twice, ``[root]`` and ``[user]`` (the unprivileged
``pilottest`` account, created on first use). The pilot, its guard and its payload live in a PID
namespace of their own (:mod:`tests.security.harness`), which is torn down after the test
whatever the payload did::

    def test_x(secure_devserver, secure_pilot):
        pandaid = secure_devserver.submit(sample_job(secure_devserver.storage_dir, overrides=...))
        run = secure_pilot.start()
        assert run.wait() == 0
        assert run.wait_until_empty(30) == []
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import pytest

from pilot.devserver.control import DevServer
from tests.e2e.conftest import TEST_CONFIG, pilot_command

from .harness import MODES, REPO, NsPilot, PilotMode, give_to, mode_for, start_ns_pilot


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the security tests make PID namespaces and a test user: they need root")


@pytest.fixture(params=MODES)
def pilot_mode(request) -> PilotMode:
    """``root`` or ``user``: who runs the pilot."""
    _need_root()
    return mode_for(request.param)


@pytest.fixture
def secure_base():
    """A directory every test user can traverse (``tmp_path`` sits under root's mode-0700 tree)."""
    base = Path(tempfile.mkdtemp(prefix="pilot-security-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def secure_devserver(secure_base):
    """A dev server in its own process (not in the pilot's namespace: the payload cannot reach it)."""
    with DevServer(secure_base / "server", https=True) as server:
        yield server


class SecurePilots:
    """Starts pilots for one test in one mode; stops every namespace at the end."""

    def __init__(self, base: Path, server: DevServer, mode: PilotMode) -> None:
        self.base, self.server, self.mode = base, server, mode
        self.runs: list = []

    def start(self, extra: Optional[list] = None, config_text: str = "", env: Optional[dict] = None) -> NsPilot:
        wdir = self.base / f"pilot{len(self.runs)}"
        wdir.mkdir(mode=0o755)
        cfg = wdir / "test.cfg"
        cfg.write_text(TEST_CONFIG + f"\n[Rucio]\nurl: {self.server.url}/traces/\n" + config_text)
        cacert = wdir / "cacert.pem"
        if self.server.cacert:
            shutil.copyfile(self.server.cacert, cacert)
        # an unprivileged pilot reads the inputs from, and writes its outputs to, the storage
        give_to(self.mode, wdir, Path(self.server.storage_dir))
        penv = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV_"))}
        penv.update(PYTHONPATH=str(REPO), PILOT_CACERT=str(cacert), HOME=str(wdir), TMPDIR=str(wdir))
        penv.update(env or {})
        run = start_ns_pilot(pilot_command(self.server, wdir, cfg, extra), wdir, self.mode, penv)
        self.runs.append(run)
        return run

    def stop(self) -> None:
        for run in self.runs:
            run.stop()


@pytest.fixture
def secure_pilot(pilot_mode, secure_base, secure_devserver):
    """Start pilots (``.start(extra, config_text, env)`` -> NsPilot) in ``pilot_mode``; all stopped after."""
    pilots = SecurePilots(secure_base, secure_devserver, pilot_mode)
    yield pilots
    pilots.stop()
