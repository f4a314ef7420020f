"""Fixtures for whole pilot runs: a real dev server subprocess and the pilot as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from pilot.devserver.control import DevServer

REPO = Path(__file__).resolve().parents[2]


def pilot_python() -> str:
    """The interpreter the pilot runs on: this one, or the node's older Python (CI runs a pass on 3.9)."""
    return os.environ.get("PILOT_TEST_PYTHON") or sys.executable


#: small limits so the suite stays fast (layered over the packaged default.cfg with --config)
TEST_CONFIG = """
[Pilot]
heartbeat: 5
debug_heartbeat: 2
getjob_retry_wait: 0.2
http_retries: 3
http_backoff: 0.2
thread_check: 1
"""


@dataclass
class PilotRun:
    """A finished (or running) pilot process and where it worked."""

    proc: subprocess.Popen
    workdir: Path
    log: Path

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"pilot did not finish in {timeout} s; log:\n{self.log_text()[-4000:]}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def main_dir(self) -> Path:
        dirs = sorted(self.workdir.glob("PanDA_Pilot2_*"))
        assert dirs, f"no pilot main dir in {self.workdir}"
        return dirs[-1]


@pytest.fixture
def devserver(tmp_path):
    """A dev server (HTTP and HTTPS) in its own process."""
    with DevServer(tmp_path / "server", https=True) as server:
        yield server


def pilot_command(server, workdir: Path, config_path: Path, extra: Optional[list] = None,
                  queue: str = "DEV_QUEUE", https: bool = False) -> list:
    url = server.https_url if https else server.url
    base = url.rsplit(":", 1)
    return [pilot_python(), str(REPO / "pilot.py"), "-q", queue, "--pilot-user", "generic",
            "--url", base[0], "-p", base[1], "-a", str(workdir), "--config", str(config_path),
            "--queuedata-url", f"{server.url}/queuedata/{{pandaqueue}}.json",
            "--storagedata-url", f"{server.url}/storagedata.json",
            "-x", "1", "-d", "--cleanup", "false"] + (extra or [])  # the tests read the main dir afterwards


@pytest.fixture
def start_pilot(tmp_path, devserver):
    """Start a pilot against the dev server; returns a PilotRun (call .wait())."""
    runs = []

    def start(extra: Optional[list] = None, config_text: str = "", env: Optional[dict] = None,
              workdir: Optional[Path] = None, https: bool = False) -> PilotRun:
        wdir = workdir or tmp_path / f"pilot{len(runs)}"
        wdir.mkdir(parents=True, exist_ok=True)
        cfg = wdir / "test.cfg"
        cfg.write_text(TEST_CONFIG + f"\n[Rucio]\nurl: {devserver.url}/traces/\n" + config_text)
        log = wdir / "pilot.stderr"
        penv = dict(os.environ, PYTHONPATH=str(REPO), PILOT_CACERT=str(devserver.cacert))
        penv.update(env or {})
        with open(log, "ab") as handle:
            proc = subprocess.Popen(pilot_command(devserver, wdir, cfg, extra, https=https), cwd=wdir,
                                    stdout=handle, stderr=subprocess.STDOUT, env=penv, start_new_session=True)
        run = PilotRun(proc, wdir, log)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()


def wait_for_file(path: Path, timeout: float = 30) -> bool:
    """Wait for a file to appear (tests only)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False
