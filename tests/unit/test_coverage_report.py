"""scripts/coverage_report.py: packages, figures and the floors scripts/test.sh enforces."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _report():
    spec = importlib.util.spec_from_file_location("coverage_report", REPO / "scripts" / "coverage_report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("coverage_report", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return sys.modules["coverage_report"]


def _figures(report, **percents):
    figures = report.Figures()
    figures.merged["total"] = report.Tally()
    for name, (covered, statements) in percents.items():
        tally = report.Tally(statements=statements, covered=covered)
        figures.merged[name.replace("_", "/")] = tally
        figures.merged["total"].statements += statements
        figures.merged["total"].covered += covered
    return figures


def test_package_of():
    report = _report()
    assert report.package_of("pilot/control/job.py") == "pilot/control"
    assert report.package_of("pilot/util/x/y.py") == "pilot/util"
    assert report.package_of("/somewhere/pilot/api/data.py") == "pilot/api"
    assert report.package_of("pilot/main.py") == report.TOP
    assert report.package_of("pilot.py") == report.TOP


def test_tally_counts_statements_and_branches():
    report = _report()
    tally = report.Tally()
    tally.add({"num_statements": 8, "covered_lines": 6, "num_branches": 2, "covered_branches": 1})
    assert round(tally.percent, 1) == 70.0
    assert report.Tally().percent == 100.0  # nothing to cover


def test_check_floors_and_reasons(tmp_path, monkeypatch):
    report = _report()
    rc = tmp_path / "rc"
    rc.write_text("[report]\nfail_under = 80\n\n[pilot:floors]\npilot/api = 50\n")
    doc = tmp_path / "coverage.rst"
    doc.write_text("``pilot/api``\n    a reason\n")
    monkeypatch.setattr(report, "RCFILE", rc)
    monkeypatch.setattr(report, "DOC_PAGE", doc)
    good = _figures(report, pilot_api=(62, 100), pilot_info=(99, 100))
    assert report.check(good) == []
    # under the floor of the total, of a package, and a package under the total with no reason
    bad = _figures(report, pilot_api=(40, 100), pilot_info=(90, 100), pilot_util=(10, 100))
    problems = report.check(bad)
    assert any("merged total" in p for p in problems)
    assert any(p.startswith("pilot/api:") and "floor" in p for p in problems)
    assert any(p.startswith("pilot/util:") and "no reason" in p for p in problems)
    assert not any(p.startswith("pilot/info") for p in problems)
    assert any("no file" in p for p in report.check(_figures(report)))  # nothing measured is no pass


def test_rst_table_for_the_docs():
    report = _report()
    rows = report.table_rows(_figures(report, pilot_api=(1, 2)))
    page = report.rst_page(rows)
    assert ".. list-table::" in page and "   * - ``pilot/api``" in page and "``total``" in page
