"""Fixtures for the data integration tests (defined in sitetools.py)."""

from sitetools import local_site, real_site  # noqa: F401
