"""Generic experiment plug-in: core counts."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData


def set_core_counts(job: JobData) -> None:
    """Make sure the job's core count is a positive integer; ``ATHENA_PROC_NUMBER`` style overrides are ignored."""
    try:
        job.corecount = max(1, int(job.corecount or 1))
    except (TypeError, ValueError):
        job.corecount = 1
    job.extra_metrics.setdefault("actualCoreCount", min(job.corecount, os.cpu_count() or 1))
