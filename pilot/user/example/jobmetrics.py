"""Example plug-in: the generic ``jobmetrics`` module, unchanged."""

from pilot.user.generic.jobmetrics import (  # noqa: F401
    get_job_metrics,
)
