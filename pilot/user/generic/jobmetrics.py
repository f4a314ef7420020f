"""Generic experiment plug-in: the jobMetrics string of the job updates (compat §11)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pilot.util.jobmetrics import default_job_metrics, format_metrics, metrics_pairs

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

__all__ = ["format_metrics", "get_job_metrics", "metrics_pairs"]


def get_job_metrics(job: JobData) -> str:
    """The jobMetrics field for ``job``."""
    return default_job_metrics(job)
