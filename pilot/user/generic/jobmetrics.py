"""Generic experiment plug-in: the jobMetrics string of the job updates (compat 11)."""

from __future__ import annotations

from typing import Any, Dict

from pilot.control.reporting import cut_metrics


def metrics_pairs(job: Any) -> Dict[str, Any]:
    """The key=value pairs every experiment reports: core count, events, database use, extras."""
    pairs: Dict[str, Any] = {"coreCount": job.corecount}
    if job.nevents:
        pairs["nEvents"] = job.nevents
    if job.neventsw:
        pairs["nEventsW"] = job.neventsw
    if job.dbtime is not None:
        pairs["dbTime"] = job.dbtime
    if job.dbdata is not None:
        pairs["dbData"] = job.dbdata
    pairs.update(job.extra_metrics or {})
    return pairs


def format_metrics(pairs: Dict[str, Any]) -> str:
    """``k=v k=v ...`` without empty values, at most 500 characters, cut at a pair boundary."""
    text = " ".join(f"{k}={v}" for k, v in pairs.items() if v not in (None, "") and " " not in str(v))
    return cut_metrics(text)


def get_job_metrics(job: Any) -> str:
    """The jobMetrics field for ``job``."""
    return format_metrics(metrics_pairs(job))
