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
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
suppress_warnings = ["autodoc.import_object"]
