"""Sphinx configuration of the pilot's documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

project = "PanDA pilot"
author = "The PanDA pilot developers"
copyright = "2026, The PanDA pilot developers"  # noqa: A001 (Sphinx setting)
extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}
exclude_patterns = ["_build", "_generated"]  # _generated: included by coverage.rst
html_theme = "alabaster"
nitpicky = False
suppress_warnings = ["autodoc.import_object"]

# coverage.rst includes the table scripts/test.sh writes after a measured run (scripts/coverage_report.py);
# a clone that has not run it gets a page that says so
_COVERAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_generated", "coverage.rst")
if not os.path.exists(_COVERAGE):
    os.makedirs(os.path.dirname(_COVERAGE), exist_ok=True)
    with open(_COVERAGE, "w") as _handle:
        _handle.write("No coverage figure is present: this build did not follow a measured run of "
                      "``scripts/test.sh``.\n")
