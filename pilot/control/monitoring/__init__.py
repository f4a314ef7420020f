"""The checks of a running job, one module each; the job monitor (``pilot.control.monitor``) runs them.

A check is an object with ``name``, ``period`` (seconds, from the config), ``run_if_due(now)``
returning a :class:`~pilot.control.monitoring.base.Verdict` or None, and ``close()``. It is built
for one :class:`~pilot.control.monitoring.base.WatchedJob` when its payload starts and closed when
the payload has ended. Every check can be run on its own with a fake job (see tests/unit/monitor).

| module | check | period key | verdict |
|---|---|---|---|
| suspend | FastCheck (payload stopped?, plug-in fast tasks) | fast_monitor_time | plug-in code |
| killfile | KillFileCheck | kill_instruction_time | 1363 (a request: job ends finished) |
| memory | MemorySampler, MemoryCheck | memory_monitor_interval, memory_usage_verification_time | 1235 |
| looping | LoopingCheck | looping_verification_time | 1150 |
| disk | DiskCheck | disk_space_verification_time | 1106, 1098, 1104, 1124 |
| lifetime | WalltimeCheck (job maxWalltime) | thread_check | 1213 |
| proxy | ProxyCheck (pilot-level) | proxy_verification_time | 1163, 1177, 1370, ... |
"""

from __future__ import annotations

import logging
from typing import List

from .base import JobCheck, Verdict, WatchedJob
from .disk import DiskCheck
from .killfile import KillFileCheck
from .lifetime import WalltimeCheck
from .looping import LoopingCheck
from .memory import memory_checks
from .suspend import FastCheck

logger = logging.getLogger(__name__)

__all__ = ["JobCheck", "Verdict", "WatchedJob", "job_checks"]


def job_checks(watched: WatchedJob) -> List[JobCheck]:
    """The checks of one running job, in the order they run when several are due together."""
    checks: List[JobCheck] = [FastCheck(watched), KillFileCheck(watched)]
    try:
        checks += memory_checks(watched)
    except Exception as exc:  # no memory monitor must not mean no other checks
        logger.exception("job %s: the memory monitor could not be set up: %s", watched.job.jobid, exc)
    allow = watched.user_function("loopingjob_definitions", "allow_loopingjob_detection")
    if getattr(watched.job, "loopingcheck", True) and (allow is None or allow()):
        checks.append(LoopingCheck(watched))
    checks += [DiskCheck(watched), WalltimeCheck(watched)]
    return checks
