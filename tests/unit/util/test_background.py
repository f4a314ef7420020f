"""OneBox background mode: which setting wins, what a background job carries, and the guard's
``--nice``/``--ionice`` taking effect in the payload (a real guard process)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pilot.info.jobdata import JobData
from pilot.info.queuedata import QueueData
from pilot.util import background
from pilot.util.config import config

REPO = Path(__file__).resolve().parents[3]
GUARD = (f"import sys; sys.path.insert(0, {str(REPO)!r}); "
         "from pilot.util.payloadguard import main; sys.exit(main())")


@pytest.fixture
def settings():
    yield lambda key, value: config.set("Pilot", key, value)
    config.clear_overrides()


def test_option_then_queuedata_then_config(settings):
    settings("background_jobs", False)
    off = SimpleNamespace(background=False)
    assert background.background_mode(SimpleNamespace(background=True), None)
    assert not background.background_mode(off, None)
    assert background.background_mode(off, QueueData.from_dict({"background": True}))
    assert background.background_mode(off, QueueData.from_dict({"catchall": "x=1 background=true"}))
    assert not background.background_mode(off, QueueData.from_dict({"catchall": "background=false"}))
    settings("background_jobs", True)
    assert background.background_mode(off, QueueData.from_dict({}))


def test_marked_job_reports_and_gets_priority(settings):
    settings("background_nice", 25)  # clamped to 19
    settings("background_ionice", True)
    job = JobData(jobid="1")
    assert background.job_priority(job) == (0, 0)
    background.mark_background(job)
    assert job.extra_metrics == {"background": 1, "nice": 19, "ionice": 3}
    assert background.job_priority(job) == (19, 3)


def test_guard_runs_the_payload_nice_and_idle_io(tmp_path):
    out = tmp_path / "out.txt"
    probe = "nice; ionice" if shutil.which("ionice") else "nice"
    cmd = [sys.executable, "-S", "-c", GUARD, "--status", str(tmp_path / "guard.json"), "--stdout", str(out),
           "--stderr", str(tmp_path / "err.txt"), "--nice", "5", "--ionice", "3", "--", probe]
    assert subprocess.run(cmd, cwd=tmp_path, timeout=60).returncode == 0
    lines = out.read_text().split()
    assert lines[0] == "5"
    if shutil.which("ionice"):
        assert lines[1] == "idle"


@pytest.mark.parametrize("value", ["x", ""])
def test_guard_refuses_a_non_numeric_nice(tmp_path, value):
    cmd = [sys.executable, "-S", "-c", GUARD, "--status", str(tmp_path / "g.json"), "--nice", value, "--", "true"]
    assert subprocess.run(cmd, cwd=tmp_path, timeout=60, capture_output=True).returncode == 2
