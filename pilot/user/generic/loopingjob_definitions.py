"""Generic experiment plug-in: files that do not count when looking for a looping job."""

from __future__ import annotations

import fnmatch
import os
from typing import List

#: name patterns of files whose updates do not show payload progress
UNWANTED_PATTERNS = ("*.py", "*.pyc", "pilotlog.txt", "pandaJobData.out", "payload_guard.json*", "pilot_timing.json")


def remove_unwanted_files(workdir: str, files: List[str]) -> List[str]:
    """``files`` without the ones matching :data:`UNWANTED_PATTERNS` (by base name)."""
    return [path for path in files
            if not any(fnmatch.fnmatch(os.path.basename(path), pattern) for pattern in UNWANTED_PATTERNS)]
