"""Coverage follows the pilot processes the tests start (doc/source/coverage.rst, scripts/test.sh)."""

from __future__ import annotations

import subprocess
import sys

from pilot.devserver.samples import sample_job

from .conftest import REPO


def test_a_pilot_process_is_measured(tmp_path, devserver, start_pilot):
    """A pilot started as the tests start it writes its own data file; the report counts its lines."""
    data = tmp_path / "coverage-data"
    data.mkdir()
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    run = start_pilot(env={"COVERAGE_PROCESS_START": str(REPO / ".coveragerc"), "PILOT_COVERAGE_DIR": str(data),
                           "PILOT_COVERAGE_SUITE": "probe"})
    assert run.wait() == 0, run.log_text()[-3000:]
    assert devserver.wait_final(pandaid, timeout=30)["state"] == "finished"
    files = list(data.glob(".coverage.*"))
    assert files, "the pilot process wrote no coverage data"
    assert not list(run.workdir.rglob(".coverage*")), "coverage data landed in the pilot's work dir"
    assert "Coverage.py warning" not in run.log_text() and "CoverageWarning" not in run.log_text()

    # combining and reading the data happen in other processes: a second Coverage object in this one
    # (itself measured when scripts/test.sh runs the suite) would disturb the suite's own data
    clean_env = {"PATH": "/usr/bin:/bin"}
    # the report script: a per-package table with the total, and the reStructuredText for the docs
    out = tmp_path / "coverage.rst"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "coverage_report.py"), "--data-dir", str(data),
                             "--output", str(out)], capture_output=True, text=True, timeout=300, env=clean_env)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.startswith(("pilot", "total"))}
    assert "pilot/control" in rows and "total" in rows
    assert 0 < float(rows["pilot/control"][3]) <= 100
    assert "list-table" in out.read_text() and "pilot/control" in out.read_text()

    probe = ("import sys, coverage; cov = coverage.Coverage(data_file=sys.argv[1], config_file=sys.argv[2]); "
             "cov.load(); data = cov.get_data(); "
             "job = [n for n in data.measured_files() if n.endswith('pilot/control/job.py')][0]; "
             "print(len(data.lines(job)), ' '.join(sorted(data.measured_contexts())))")
    read = subprocess.run([sys.executable, "-c", probe, str(data / ".coverage"), str(REPO / ".coveragerc")],
                          capture_output=True, text=True, timeout=120, env=clean_env)
    assert read.returncode == 0, read.stderr
    lines, *contexts = read.stdout.split()
    assert int(lines) > 50  # the pilot's job control really ran under coverage, in the pilot process
    assert "probe" in contexts  # labelled with the suite that started it
