"""The fault suite reuses the whole-pilot fixtures of tests/e2e."""

from tests.e2e.conftest import devserver, start_pilot  # noqa: F401 (pytest fixtures)
