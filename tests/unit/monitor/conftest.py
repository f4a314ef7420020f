"""Config overrides for the monitor unit tests."""

from __future__ import annotations

import copy

import pytest

from pilot.util.config import config


@pytest.fixture
def settings():
    """Set [Pilot] keys for one test: ``settings(looping_limit_default=5, ...)``."""
    saved = copy.deepcopy(config._overrides)

    def apply(**values):
        for key, value in values.items():
            config.set("Pilot", key, value)

    yield apply
    with config._lock:
        config._overrides = saved
