"""--cleanup (pilot.main.clean_up): Pilot 2's rule, and the main dir is kept while recovery needs it."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

from pilot.main import clean_up, recovery_needs


def _layout(tmp_path):
    launch = tmp_path / "launch"
    main = launch / "PanDA_Pilot2_1_2"
    (main / "PanDA_Pilot-77").mkdir(parents=True)
    (main / "pilotlog.txt").write_text("log\n")
    return launch, main


def test_removes_the_main_dir_it_made(tmp_path):
    launch, main = _layout(tmp_path)
    cwd = os.getcwd()
    try:
        assert clean_up(SimpleNamespace(cleanup=True, workdir=str(launch)), str(launch), str(main))
    finally:
        os.chdir(cwd)
    assert not main.exists() and launch.is_dir()


def test_keeps_it_with_cleanup_false_and_never_removes_the_launch_dir(tmp_path):
    launch, main = _layout(tmp_path)
    assert not clean_up(SimpleNamespace(cleanup=False, workdir=str(launch)), str(launch), str(main))
    assert main.is_dir()
    assert not clean_up(SimpleNamespace(cleanup=True, workdir=""), str(launch), str(launch))
    assert launch.is_dir()


def test_keeps_it_while_a_job_in_it_waits_for_recovery(tmp_path):
    launch, main = _layout(tmp_path)
    area = launch / "pilot_recovery"
    area.mkdir()
    (area / "77.json").write_text(json.dumps({"jobid": "77", "state": {"workdir": str(main / "PanDA_Pilot-77")}}))
    (area / "88.json").write_text(json.dumps({"jobid": "88", "state": {"workdir": str(launch / "other" / "x")}}))
    assert recovery_needs(str(main), str(launch)) == ["77"]
    assert not clean_up(SimpleNamespace(cleanup=True, workdir=str(launch)), str(launch), str(main))
    assert (main / "PanDA_Pilot-77").is_dir()
