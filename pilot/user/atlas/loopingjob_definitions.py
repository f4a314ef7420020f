"""ATLAS plug-in: files whose updates do not show payload progress (looping job detection)."""

from __future__ import annotations

import fnmatch
import os
from typing import List

from pilot.user.generic.loopingjob_definitions import UNWANTED_PATTERNS

ATLAS_PATTERNS = UNWANTED_PATTERNS + ("PoolFileCatalog.xml", "memory_monitor*", "prmon*", "*.proxy",
                                      "pandatracerlog.txt", "container_script.sh", "my_release_setup.sh")


def remove_unwanted_files(workdir: str, files: List[str]) -> List[str]:
    """``files`` without the ones matching :data:`ATLAS_PATTERNS` (by base name)."""
    return [path for path in files
            if not any(fnmatch.fnmatch(os.path.basename(path), pattern) for pattern in ATLAS_PATTERNS)]
