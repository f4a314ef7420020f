"""Fixtures for the Data API tests (defined in apitools.py, which the tests also import helpers from)."""

from apitools import fake_tools, no_default_traces, site  # noqa: F401
