"""ATLAS plug-in: compare the payload's memory (from the memory monitor) with the queue's limit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Tuple

from pilot.common.errorcodes import ErrorCodes
from pilot.user.generic.jobdata import job_queuedata

from .utilities import get_memory_monitor_info

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData


def allow_memory_usage_verifications() -> bool:
    """ATLAS checks memory usage."""
    return True


def memory_limit_kb(job: JobData) -> int:
    """The job's PSS limit in kB from the queue's ``maxrss`` (MB); 0 when unknown."""
    queuedata = job_queuedata(job)
    maxrss = int(getattr(queuedata, "maxrss", 0) or 0) if queuedata is not None else 0
    return maxrss * 1024


def memory_usage(job: JobData) -> Tuple[int, str]:
    """(1235 PAYLOADEXCEEDMAXMEM, diag) when the payload's max PSS is above the limit, else (0, '')."""
    limit = memory_limit_kb(job)
    if not limit or not job.workdir:
        return 0, ""
    info = get_memory_monitor_info(job.workdir)
    if info:
        job.memory_summary.update(info)
    pss = info.get("maxPSS", 0)
    if pss > limit:
        return ErrorCodes.PAYLOADEXCEEDMAXMEM, f"payload PSS {pss} kB is above the limit of {limit} kB"
    return 0, ""
