"""The jobMetrics field of job updates: ``key=value`` pairs, at most 500 characters (compat §11)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

MAX_JOBMETRICS = 500


def cut_metrics(text: str, limit: int = MAX_JOBMETRICS) -> str:
    """Cut a jobMetrics string to ``limit`` characters at a pair boundary."""
    if len(text) <= limit:
        return text
    out = ""
    for pair in text.split(" "):
        if len(out) + len(pair) + (1 if out else 0) > limit:
            break
        out = f"{out} {pair}" if out else pair
    return out


def metrics_pairs(job: JobData) -> Dict[str, Any]:
    """The pairs every experiment reports: core count, events, database use, and the job's extras."""
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
    """``k=v k=v ...`` without empty values or values with blanks, cut at a pair boundary."""
    text = " ".join(f"{k}={v}" for k, v in pairs.items() if v not in (None, "") and " " not in str(v))
    return cut_metrics(text)


def default_job_metrics(job: JobData) -> str:
    """The jobMetrics string when the experiment adds nothing of its own."""
    return format_metrics(metrics_pairs(job))
