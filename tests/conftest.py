"""Labels coverage data with the suite of the running test (doc/source/coverage.rst).

Only acts when scripts/test.sh measures coverage (``COVERAGE_PROCESS_START`` set): the test process
switches its dynamic context to the suite (unit, integration, e2e, faults, security) of each test, and
``PILOT_COVERAGE_SUITE`` carries it to the processes the test starts (their static context).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SUITE_VARIABLE = "PILOT_COVERAGE_SUITE"


def _suite(path: Path) -> str:
    try:
        return path.resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return "other"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if not os.environ.get("COVERAGE_PROCESS_START"):
        return
    suite = _suite(Path(str(item.fspath)))
    if os.environ.get(SUITE_VARIABLE) == suite:
        return
    os.environ[SUITE_VARIABLE] = suite
    try:
        import coverage
    except ImportError:
        return
    current = coverage.Coverage.current()
    if current is not None:
        current.switch_context(suite)
