"""The looping-job noise filter's name patterns match exactly what fnmatch matches."""

from __future__ import annotations

import fnmatch

import pytest

from pilot.user.generic.loopingjob_definitions import UNWANTED_PATTERNS, _matcher

NAMES = ["a.py", "a.pyc", ".py", "py", "x.py.txt", "pilotlog.txt", "pilotlog.txt.1", "payload_guard.json",
         "payload_guard.json.tmp", "pandaJobData.out", "amidb", "mid", "axb", "ab", "bx", "", "xy", "xzy", "A.PY"]


@pytest.mark.parametrize("pattern", list(UNWANTED_PATTERNS) + ["*mid*", "a?b", "[ab]*", "*", "**", "x*y"])
def test_matcher_agrees_with_fnmatch(pattern):
    match = _matcher(pattern)
    assert [name for name in NAMES if match(name)] == [name for name in NAMES if fnmatch.fnmatchcase(name, pattern)]
