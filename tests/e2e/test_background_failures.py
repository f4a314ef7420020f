"""A background activity that fails inside a real pilot is noticed: logged with its name, counted in
the pilot's metrics file, and (not critical) it carries on while the job finishes normally."""

from __future__ import annotations

import re
import time
from pathlib import Path

from pilot.devserver.samples import sample_job
from tests.e2e.conftest import wait_for_file

#: the payload waits (at most 120 s) for a file ``go`` in its work dir before it does the sample's work
WAIT = "for i in $(seq 1200); do [ -e go ] && break; sleep 0.1; done; "


def wait_until(check, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


def test_a_failing_metrics_writer_is_counted_and_the_pilot_carries_on(devserver, start_pilot, tmp_path):
    metrics_dir = tmp_path / "textfile"
    job = sample_job(devserver.storage_dir)
    job["jobPars"] = job["jobPars"].replace("-c '", "-c '" + WAIT, 1)
    pandaid = devserver.submit(job)
    run = start_pilot(config_text=f"\n[Pilot]\nmetrics_dir: {metrics_dir}\nmetrics_interval: 0.5\n")
    devserver.wait_state(pandaid, "running", timeout=60)
    assert wait_until(lambda: list(metrics_dir.glob("pilot_*.prom")), 30), run.log_text()[-3000:]
    prom = next(metrics_dir.glob("pilot_*.prom"))

    def block() -> bool:  # a directory where the file goes: the next periodic write fails
        try:
            prom.unlink()
            prom.mkdir()
            return True
        except (FileNotFoundError, FileExistsError):  # a write came in between: try again
            return False

    assert wait_until(block, 30)
    failed = "background activity metrics-writer failed (IsADirectoryError"
    assert wait_until(lambda: run.log_text().count(failed) >= 2, 60), run.log_text()[-3000:]
    prom.rmdir()
    assert wait_for_file(prom, 30)  # the writer carried on
    assert wait_until(lambda: prom.is_file() and "metrics-writer" in prom.read_text(), 30)
    assert metric(prom.read_text(), "pilot_background_exceptions_total", activity="metrics-writer") >= 2
    (Path(run.main_dir()) / f"PanDA_Pilot-{pandaid}" / "go").touch()  # let the payload finish

    status = run.wait()
    record = devserver.wait_final(pandaid, timeout=30)
    assert status == 0 and record["state"] == "finished", run.log_text()[-3000:]
    text = prom.read_text()
    assert metric(text, "pilot_running") == 0  # the last file
    assert metric(text, "pilot_background_exceptions_total", activity="metrics-writer") >= 2
    for component in ("stage_in", "execute_payloads", "stage_out", "job_monitor"):
        assert metric(text, "pilot_background_exceptions_total", activity=component) == 0
    assert not list(metrics_dir.glob(".*"))  # no temporary file left by the failed writes
    assert "background activities still running at the end" not in run.log_text()  # every owner stopped its own
