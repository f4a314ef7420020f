"""ATLAS plug-in: fast job-monitor checks."""

from __future__ import annotations

from typing import Any


def fast_monitor_tasks(job: Any) -> int:
    """Checks run every few seconds while the payload runs; 0 means all is well (none yet for ATLAS)."""
    return 0
