"""What a user or a site sees: option and configuration mistakes, --cleanup, the launch directory,
the exit summary. Real pilot processes against the dev server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pilot.devserver.samples import sample_job

from .conftest import REPO, TEST_CONFIG, pilot_command


def run_pilot(args: list, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "pilot.py")] + args, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}, check=False)


@pytest.mark.parametrize("setup,args,expected", [
    (None, ["--config", "missing.cfg"], "configuration file missing.cfg does not exist"),
    ("dir", ["--config", "adir"], "configuration file adir is a directory, not a file"),
    ("nosection.cfg:heartbeat: 5\n", ["--config", "nosection.cfg"], "nosection.cfg, line 1: a key before the first"),
    ("badline.cfg:[Pilot]\nheartbeat\n", ["--config", "badline.cfg"], "badline.cfg: cannot parse line 2"),
    ("num.cfg:[Pilot]\nheartbeat: soon\n", ["--config", "num.cfg"],
     "[Pilot] heartbeat in num.cfg: 'soon' is not a number"),
    ("env.cfg:[Pilot]\nheartbeat: $PILOT_TEST_UNSET\n", ["--config", "env.cfg"],
     "environment variable $PILOT_TEST_UNSET, which is not set"),
    ("pilot.cfg:no header\n", [], "pilot.cfg, line 1: a key before the first [section] header"),
    (None, ["-p", "70000"], "argument -p/--port: port must be between 1 and 65535"),
    (None, ["--cleanup", "maybe"], "argument --cleanup: boolean value expected"),
    (None, ["--cacert", "nothere.pem"], "option --cacert: nothere.pem is not a file"),
    ("afile:x", ["-a", "afile"], "option -a/--workdir: afile is not a directory"),
    (None, ["--url", "https://server:port"], "option --url: https://server:port has an invalid port"),
    (None, ["--queuedata-url", "ftp://x/q.json"], "option --queuedata-url: ftp://x/q.json is not an http(s)://"),
])
def test_configuration_and_option_mistakes_are_one_line_with_status_2(tmp_path, setup, args, expected):
    if setup == "dir":
        (tmp_path / "adir").mkdir()
    elif setup:
        name, text = setup.split(":", 1)
        (tmp_path / name).write_text(text)
    result = run_pilot(["-q", "DEV_QUEUE"] + args, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert not list(tmp_path.glob("PanDA_Pilot2_*")), "nothing is started after a mistake"


def _config(devserver, directory: Path) -> Path:
    cfg = directory / "test.cfg"
    cfg.write_text(TEST_CONFIG + f"\n[Rucio]\nurl: {devserver.url}/traces/\n")
    return cfg


def test_cleanup_removes_the_main_dir_and_the_summary_says_what_happened(devserver, tmp_path):
    good = devserver.submit(sample_job(devserver.storage_dir))
    launch = tmp_path / "launch"
    launch.mkdir()
    cfg = _config(devserver, tmp_path)
    cmd = pilot_command(devserver, launch, cfg, ["-v", "1"])[2:] + ["--cleanup", "true"]
    result = run_pilot(cmd, launch, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert devserver.wait_final(good, timeout=30)["state"] == "finished"
    assert not list(launch.glob("PanDA_Pilot2_*")), "--cleanup (default true) removes the main work dir"
    summary = result.stderr[result.stderr.index("pilot summary:"):]
    assert "pilot summary: 1 job request(s), 1 job(s) received: 1 finished, 0 failed" in summary
    assert f"job {good}: finished" in summary
    assert "(removed at exit: --cleanup" in summary and "pilotlog.txt was removed with the work dir" in summary
    assert "exit status 0: success" in summary
    # -d: a trace of each phase
    for needle in ("job request 1: siteName=DEV_QUEUE", "/getJob: HTTP 200", "/updateJob: HTTP 200",
                   "payload started under the guard, PID", "payload guard PID", "--cleanup: removing"):
        assert needle in result.stderr, needle


def test_without_a_the_launch_dir_gets_only_the_pilot_dir_and_a_failed_job_is_summarised(devserver, tmp_path):
    bad = devserver.submit(sample_job(devserver.storage_dir, overrides={"jobPars": "-c 'exit 3'"}))
    launch = tmp_path / "launch"
    launch.mkdir()
    cfg = _config(devserver, tmp_path)
    cmd = pilot_command(devserver, launch, cfg)[2:]
    where = cmd.index("-a")
    del cmd[where:where + 2]
    result = run_pilot(cmd + ["--cleanup", "false"], launch, timeout=120)
    final = devserver.wait_final(bad, timeout=30)["final_update"]
    assert final["state"] == "failed"
    code = int(final["pilotErrorCode"])
    mains = list(launch.glob("PanDA_Pilot2_*"))
    assert len(mains) == 1, sorted(p.name for p in launch.iterdir())
    # besides its own dir only the areas shared by the pilots started here (outbox, recovery, ledger)
    extra = {p.name for p in launch.iterdir() if not (p.is_dir() and p.name.startswith("pilot_"))} - {mains[0].name}
    assert not extra, f"files left in the launch directory: {extra}"
    assert (mains[0] / "pilotlog.txt").is_file() and (mains[0] / "pandaIDs.out").is_file()
    summary = result.stderr[result.stderr.index("pilot summary:"):]
    assert "1 job(s) received: 0 finished, 1 failed" in summary
    assert f"job {bad}: failed, error {code}:" in summary
    assert f"work dir: {mains[0]}" in summary and f"log: {mains[0] / 'pilotlog.txt'}" in summary
    assert f"exit status {result.returncode}: " in summary


def test_version_option(tmp_path):
    result = run_pilot(["--version"], tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"PanDA pilot {(REPO / 'PILOTVERSION').read_text().strip()}"


def test_multi_job_mode_and_its_summary(devserver, tmp_path):
    """timefloor in the queue data and -v: one pilot takes several jobs; the summary lists each."""
    devserver.set_queuedata("DEV_QUEUE", {"timefloor": 10})
    first = devserver.submit(sample_job(devserver.storage_dir))
    second = devserver.submit(sample_job(devserver.storage_dir, overrides={"jobPars": "-c 'exit 2'"}))
    launch = tmp_path / "launch"
    launch.mkdir()
    cmd = pilot_command(devserver, launch, _config(devserver, tmp_path), ["-v", "3"])[2:]
    result = run_pilot(cmd, launch, timeout=180)
    assert devserver.wait_final(first, timeout=30)["state"] == "finished"
    failed = devserver.wait_final(second, timeout=30)["final_update"]
    assert failed["state"] == "failed"
    summary = result.stderr[result.stderr.index("pilot summary:"):]
    assert "pilot summary: 3 job request(s), 2 job(s) received: 1 finished, 1 failed" in summary, summary
    assert f"job {first}: finished" in summary
    assert f"job {second}: failed, error {int(failed['pilotErrorCode'])}:" in summary
    assert result.returncode == 0 and "exit status 0: success" in summary  # several jobs: Pilot 2's rule
