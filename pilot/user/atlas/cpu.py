"""ATLAS plug-in: core counts (``ATHENA_PROC_NUMBER`` set by the site wins over the job's value)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pilot.user.generic.cpu import set_core_counts as generic_set_core_counts

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData


def set_core_counts(job: JobData) -> None:
    """Set the job's core count and the actual core count reported in jobMetrics."""
    value = os.environ.get("ATHENA_PROC_NUMBER", "")
    if value.isdigit() and int(value) > 0:
        job.corecount = int(value)
    generic_set_core_counts(job)
