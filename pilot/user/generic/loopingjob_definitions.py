"""Generic experiment plug-in: files that do not count when looking for a looping job."""

from __future__ import annotations

import fnmatch
import os
from typing import Callable, List

#: name patterns of files whose updates do not show payload progress
UNWANTED_PATTERNS = ("*.py", "*.pyc", "pilotlog.txt", "pandaJobData.out", "payload_guard.json*", "pilot_timing.json")


def _matcher(pattern: str) -> Callable[[str], bool]:
    """A test for one name pattern: plain string checks for ``name``, ``*suffix`` and ``prefix*``.

    fnmatch would compile a regular expression per pattern in every pilot, for a check that runs
    once per looping-job scan; any other pattern still goes to fnmatch.
    """
    body = pattern.strip("*")
    if any(char in body for char in "*?[") or not body:
        return lambda name: fnmatch.fnmatchcase(name, pattern)
    if pattern.startswith("*") and pattern.endswith("*") and len(pattern) > 1:
        return lambda name: body in name
    if pattern.startswith("*"):
        return lambda name: name.endswith(body)
    if pattern.endswith("*"):
        return lambda name: name.startswith(body)
    return lambda name: name == body


def remove_unwanted_files(workdir: str, files: List[str]) -> List[str]:
    """``files`` without the ones matching :data:`UNWANTED_PATTERNS` (by base name)."""
    matchers = [_matcher(pattern) for pattern in UNWANTED_PATTERNS]
    return [path for path in files
            if not any(match(os.path.basename(path)) for match in matchers)]
