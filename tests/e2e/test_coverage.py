"""Coverage follows the pilot processes the tests start (doc/source/coverage.rst, scripts/test.sh)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import coverage

from pilot.devserver.samples import sample_job

from .conftest import REPO


def _report_module():
    spec = importlib.util.spec_from_file_location("coverage_report", REPO / "scripts" / "coverage_report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("coverage_report", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


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

    report = _report_module()
    merged = report.combine(data)
    cov = coverage.Coverage(data_file=str(merged), config_file=str(REPO / ".coveragerc"))
    cov.load()
    measured = cov.get_data()
    job = next(name for name in measured.measured_files() if name.endswith("pilot/control/job.py"))
    assert len(measured.lines(job)) > 50  # the pilot's job control really ran under coverage
    assert measured.measured_contexts() >= {"probe"}  # labelled with the suite that started it

    # the report script: a per-package table with the total, and the reStructuredText for the docs
    out = tmp_path / "coverage.rst"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "coverage_report.py"), "--data-dir", str(data),
                             "--output", str(out)], capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.startswith(("pilot", "total"))}
    assert "pilot/control" in rows and "total" in rows
    assert 0 < float(rows["pilot/control"][3]) <= 100
    assert "list-table" in out.read_text() and "pilot/control" in out.read_text()
