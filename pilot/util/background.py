"""OneBox background jobs: a pilot that asks for background work and runs it at low priority.

A pilot in background mode (``--background``, the queue data key ``background`` or the catchall
``background=true``, else ``[Pilot] background_jobs``) sends ``background=True`` with getJob (the
legacy form's string ``'True'``, the REST ``acquire_jobs`` JSON ``true``). Every job it runs is then
marked in its job metrics (``background=1 nice=N ionice=3``) and its payload starts under the guard
with ``os.nice(N)`` (``[Pilot] background_nice``) and, where the kernel allows, the idle I/O class
(``ionice -c3``, ``[Pilot] background_ionice``), so it yields CPU and disk to the job it runs next to.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional, Tuple

from pilot.util.config import config

if TYPE_CHECKING:
    from pilot.info.queuedata import QueueData
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

#: the I/O scheduling class of ``ionice -c3`` (idle)
IOPRIO_CLASS_IDLE = 3
_TRUE = ("1", "true", "yes", "y", "t", "on")


def _truth(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def background_mode(args: Any, queuedata: Optional[QueueData] = None) -> bool:
    """Whether this pilot asks for (and runs) background jobs: option, then queue data, then config."""
    if getattr(args, "background", None):
        return True
    if queuedata is not None:
        value = (getattr(queuedata, "params", None) or {}).get("background")
        if value is None and hasattr(queuedata, "catchall_value"):
            value = queuedata.catchall_value("background")
        if value is not None:
            return _truth(value)
    return _truth(config.Pilot.get("background_jobs", False))


def priority_settings() -> Tuple[int, int]:
    """(niceness increment, I/O class or 0) a background job's payload starts with."""
    try:
        nice = max(0, min(19, int(config.Pilot.get("background_nice", 10))))
    except (TypeError, ValueError):
        nice = 10
    ionice = IOPRIO_CLASS_IDLE if _truth(config.Pilot.get("background_ionice", True)) else 0
    return nice, ionice


def mark_background(job: JobData) -> None:
    """Mark ``job`` as a background job: its job metrics say so and its payload runs at low priority."""
    nice, ionice = priority_settings()
    job.extra_metrics.update({"background": 1, "nice": nice})
    if ionice:
        job.extra_metrics["ionice"] = ionice
    logger.info("job %s is a background (OneBox) job: its payload runs with nice %d%s", job.jobid, nice,
                f" and ionice -c{ionice}" if ionice else "")


def job_priority(job: JobData) -> Tuple[int, int]:
    """(niceness increment, I/O class) for ``job``'s payload: (0, 0) unless it is a background job."""
    extra = getattr(job, "extra_metrics", None) or {}
    if not extra.get("background"):
        return 0, 0
    try:
        return int(extra.get("nice", 0) or 0), int(extra.get("ionice", 0) or 0)
    except (TypeError, ValueError):
        return 0, 0
