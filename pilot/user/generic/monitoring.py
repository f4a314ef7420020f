"""Generic experiment plug-in: fast job-monitor checks (none by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData


def fast_monitor_tasks(job: JobData) -> int:
    """Checks run every few seconds while the payload runs; 0 means all is well."""
    return 0
