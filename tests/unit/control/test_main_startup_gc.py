"""The garbage collector is off while the pilot starts and on again (with start-up frozen) afterwards."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from pilot import main as pilot_main

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def restore_gc():
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_end_of_startup_freezes_and_enables(restore_gc):
    gc.disable()
    pilot_main.end_of_startup()
    assert gc.isenabled() and gc.get_freeze_count() > 0


def test_a_usage_error_leaves_the_collector_on(restore_gc):
    gc.disable()
    with pytest.raises(SystemExit):
        pilot_main.main(["--no-such-option"])
    assert gc.isenabled()


def test_the_launcher_loads_the_pilot_with_the_collector_off():
    code = ("import gc, runpy, sys; import pilot.main as m; "
            "m.main = lambda: print(gc.isenabled()) or 0; "
            f"sys.argv = ['pilot.py']; runpy.run_path({str(REPO / 'pilot.py')!r}, run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
