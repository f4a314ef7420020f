"""ATLAS plug-in: the jobMetrics string (core count, events, database use, work dir size, extras)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pilot.user.generic.jobmetrics import format_metrics, metrics_pairs

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

#: keys ATLAS reports when known, in this order (compat 11)
ATLAS_KEYS = ("coreCount", "actualCoreCount", "nEvents", "nEventsW", "dbTime", "dbData", "resimevents",
              "workDirSize", "leak", "chi2", "eventnumber")


def get_job_metrics(job: JobData) -> str:
    """``key=value`` pairs, at most 500 characters, cut at a pair boundary; ATLAS keys first."""
    pairs = metrics_pairs(job)
    ordered = {key: pairs[key] for key in ATLAS_KEYS if key in pairs}
    ordered.update({k: v for k, v in pairs.items() if k not in ordered})
    return format_metrics(ordered)
