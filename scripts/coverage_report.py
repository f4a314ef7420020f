"""Merge the coverage data of the main pytest pass and report it per package and per suite.

scripts/test.sh runs this after the main pytest pass (doc/source/coverage.rst). It

- combines the parallel data files every measured process wrote into ``PILOT_COVERAGE_DIR``;
- prints a table: one row per package of the pilot (``pilot/api``, ``pilot/control``, ...) and the total,
  with the merged figure and the figure of each suite (the coverage context tests/conftest.py sets);
- writes the same table as reStructuredText to doc/source/_generated/coverage.rst, which
  doc/source/coverage.rst includes (the docs build writes a "no figure" page when it is missing);
- with ``--check``: fails when the merged total is under ``[report] fail_under`` of .coveragerc, when a
  package is under its floor in ``[pilot:floors]``, or when a package under the total is not named in
  doc/source/coverage.rst (every such package needs a reason there).

Usage: python scripts/coverage_report.py [--check]   (PILOT_COVERAGE_DIR: the data directory)
"""

from __future__ import annotations

import argparse
import configparser
import datetime
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
RCFILE = ROOT / ".coveragerc"
GENERATED = ROOT / "doc" / "source" / "_generated" / "coverage.rst"
DOC_PAGE = ROOT / "doc" / "source" / "coverage.rst"
#: the test suites, as tests/conftest.py labels them (the top directories of tests/)
SUITES = ("unit", "integration", "e2e", "faults", "security")
TOP = "pilot/*.py, pilot.py"


@dataclass
class Tally:
    """Statements and branches of a set of files, and how many of them ran."""

    statements: int = 0
    covered: int = 0
    branches: int = 0
    covered_branches: int = 0

    def add(self, summary: dict) -> None:
        self.statements += summary.get("num_statements", 0)
        self.covered += summary.get("covered_lines", 0)
        self.branches += summary.get("num_branches", 0)
        self.covered_branches += summary.get("covered_branches", 0)

    @property
    def percent(self) -> float:
        total = self.statements + self.branches
        return 100.0 * (self.covered + self.covered_branches) / total if total else 100.0


@dataclass
class Figures:
    """Tallies per package, for the merged data and for each suite."""

    merged: Dict[str, Tally] = field(default_factory=dict)
    suites: Dict[str, Dict[str, Tally]] = field(default_factory=dict)

    def packages(self) -> List[str]:
        return sorted(name for name in self.merged if name != "total")


def package_of(path: str) -> str:
    """``pilot/control`` for pilot/control/job.py, ``pilot/util`` for pilot/util/x/y.py, TOP for pilot/x.py."""
    parts = Path(path).parts
    if "pilot" in parts:
        parts = parts[len(parts) - 1 - parts[::-1].index("pilot"):]
    return f"pilot/{parts[1]}" if len(parts) > 2 else TOP


def _tally_json(cov, contexts: Optional[List[str]]) -> Dict[str, Tally]:
    """One figure through coverage's public JSON report (parses every file again: the slow way)."""
    with tempfile.TemporaryDirectory(prefix="pilot-coverage-") as tmp:
        out = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(out), contexts=contexts, ignore_errors=True)
        report = json.loads(out.read_text())
    tallies: Dict[str, Tally] = {"total": Tally()}
    for path, entry in report.get("files", {}).items():
        if not _ours(path):
            continue
        name = package_of(os.path.relpath(path, ROOT) if os.path.isabs(path) else path)
        tallies.setdefault(name, Tally()).add(entry["summary"])
        tallies["total"].add(entry["summary"])
    return tallies


def _ours(path: str) -> bool:
    """A file of this checkout's pilot (tests also run plug-ins and trees they write into tmp dirs)."""
    path = os.path.abspath(path)
    return path.startswith(str(ROOT / "pilot") + os.sep) or path == str(ROOT / "pilot.py")


def _tally_all(cov, queries: Dict[str, Optional[List[str]]]) -> Dict[str, Dict[str, Tally]]:
    """Every figure with one parse of each file (coverage's analysis API, private but stable since 7)."""
    data = cov.get_data()
    results: Dict[str, Dict[str, Tally]] = {key: {"total": Tally()} for key in queries}
    from coverage.exceptions import NoSource, NotPython

    for reporter, morf in cov._get_file_reporters(None):
        if not _ours(reporter.filename):
            continue
        name = package_of(reporter.relative_filename())
        for key, contexts in queries.items():
            data.set_query_contexts(contexts)
            try:
                numbers = cov._analyze(morf, reporter).numbers
            except (NoSource, NotPython):  # gone or not Python: as ``ignore_errors`` does
                break
            summary = {"num_statements": numbers.n_statements, "covered_lines": numbers.n_executed,
                       "num_branches": numbers.n_branches,
                       "covered_branches": numbers.n_branches - numbers.n_missing_branches}
            results[key].setdefault(name, Tally()).add(summary)
            results[key]["total"].add(summary)
    data.set_query_contexts(None)
    return results


def measure(data_file: Path) -> Figures:
    import coverage

    cov = coverage.Coverage(data_file=str(data_file), config_file=str(RCFILE))
    cov.load()
    # lines run while pytest collects (module level of what the tests import) carry the empty context:
    # they count for every suite
    queries: Dict[str, Optional[List[str]]] = {"merged": None}
    queries.update({suite: [f"^(|{suite})$"] for suite in SUITES})
    try:
        results = _tally_all(cov, queries)
    except AttributeError:  # a coverage without that API
        results = {key: _tally_json(cov, contexts) for key, contexts in queries.items()}
    return Figures(merged=results.pop("merged"), suites=results)


def table_rows(figures: Figures) -> List[List[str]]:
    header = ["package", "statements", "branches", "merged %"] + [f"{s} %" for s in SUITES]
    rows = [header]
    for name in figures.packages() + ["total"]:
        tally = figures.merged[name]
        row = [name, str(tally.statements), str(tally.branches), f"{tally.percent:.1f}"]
        for suite in SUITES:
            part = figures.suites.get(suite, {}).get(name)
            row.append(f"{part.percent:.1f}" if part else "0.0")
        rows.append(row)
    return rows


def text_table(rows: List[List[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                               for i, cell in enumerate(row)))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=30).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def rst_page(rows: List[List[str]]) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"Measured by ``scripts/test.sh`` at {stamp} on commit ``{_commit()}``: statements and branches "
           "of each package, the merged figure of the main pytest pass and the figure of each suite alone.",
           "", ".. list-table::", "   :header-rows: 1", ""]
    for row in rows:
        out.append(f"   * - ``{row[0]}``" if row is not rows[0] else f"   * - {row[0]}")
        out.extend(f"     - {cell}" for cell in row[1:])
    return "\n".join(out) + "\n"


def check(figures: Figures) -> List[str]:
    """The failures of the floors of .coveragerc and of the docs' reasons."""
    parser = configparser.RawConfigParser()
    parser.read(RCFILE)
    problems = []
    total = figures.merged["total"].percent
    if not figures.merged["total"].statements:
        problems.append("no file of this checkout's pilot was measured")
    floor = parser.getfloat("report", "fail_under", fallback=0.0)
    if total < floor:
        problems.append(f"merged total {total:.1f} % is under the floor {floor:.1f} % ([report] fail_under)")
    if parser.has_section("pilot:floors"):
        for name, value in parser.items("pilot:floors"):
            tally = figures.merged.get(name)
            got = tally.percent if tally else 0.0
            if got < float(value):
                problems.append(f"{name}: {got:.1f} % is under its floor {float(value):.1f} % ([pilot:floors])")
    doc = DOC_PAGE.read_text() if DOC_PAGE.exists() else ""
    for name in figures.packages():
        if figures.merged[name].percent < total and f"``{name}``" not in doc:
            problems.append(f"{name}: {figures.merged[name].percent:.1f} % is under the total {total:.1f} % "
                            f"and doc/source/coverage.rst gives no reason (name it as ``{name}``)")
    return problems


def combine(data_dir: Path) -> Path:
    import coverage

    data_file = data_dir / ".coverage"
    cov = coverage.Coverage(data_file=str(data_file), config_file=str(RCFILE))
    if any(data_dir.glob(".coverage.*")):  # parallel files not combined yet (appended to what was)
        cov.load()
        cov.combine([str(data_dir)], strict=False, keep=False)
        cov.save()
    return data_file


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="enforce the floors of .coveragerc")
    parser.add_argument("--data-dir", default=os.environ.get("PILOT_COVERAGE_DIR", str(ROOT / ".coverage-data")))
    parser.add_argument("--output", default=str(GENERATED), help="the reStructuredText table (for the docs)")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir).resolve()
    output = Path(args.output).resolve()
    os.chdir(ROOT)  # file names relative to the repo
    if not data_dir.is_dir() or not any(data_dir.glob(".coverage*")):
        print(f"no coverage data in {data_dir}", file=sys.stderr)
        return 1
    figures = measure(combine(data_dir))
    rows = table_rows(figures)
    print(text_table(rows))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(rst_page(rows))
    print(f"(table written to {output}; data in {data_dir / '.coverage'})")
    if args.check:
        problems = check(figures)
        for problem in problems:
            print(f"coverage: {problem}", file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
