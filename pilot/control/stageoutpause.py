"""The long-break stage-out retry: after a transient stage-out failure, pause for minutes and try again.

Storage that is down for a few minutes (a restart, a full pool being cleaned) fails the three quick
attempts of a transfer; for a long job that is an expensive loss, so the pilot can wait and retry.
The stage is taken only for jobs whose payload ran at least ``[Pilot] stageout_long_retry_min_runtime``
seconds (0 switches it off; short jobs are cheaper to rerun), once per value of
``stageout_long_retry_waits`` (seconds, comma-separated; per job: the outputs and the log share
them), and only when the pause still leaves ``stageout_long_retry_reserve`` seconds before the
job's maximum walltime and the pilot's lifetime end (a pause is shortened to fit, or skipped).
During a pause the job's heartbeats go on every ``[Pilot] heartbeat`` seconds, and the pilot's
stop event ends it at once. The queue data keys of the same names override the config. Each pause
is logged and counted in the job metrics (``stageoutLongRetries=N``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, List, Optional

from pilot.control.monitoring.lifetime import Lifetime
from pilot.util import constants as c
from pilot.util.config import config

if TYPE_CHECKING:
    from pilot.control.context import PilotContext
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

#: the job metrics key counting the pauses taken
METRIC = "stageoutLongRetries"


def _setting(ctx: PilotContext, key: str, default: Any) -> Any:
    queuedata = getattr(getattr(ctx, "infosys", None), "queuedata", None)
    value = (getattr(queuedata, "params", None) or {}).get(key) if queuedata is not None else None
    if value in (None, ""):
        value = config.Pilot.get(key, default)
    return default if value in (None, "") else value


def _seconds(value: Any, default: float) -> float:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return default


def pause_plan(ctx: PilotContext, job: JobData) -> List[float]:
    """The pauses (seconds) this job may take before stage-out retries; [] when the stage is off for it."""
    threshold = _seconds(_setting(ctx, "stageout_long_retry_min_runtime", 0), 0.0)
    if not threshold:
        return []
    start, end = job.timing.get(c.PILOT_PRE_PAYLOAD), job.timing.get(c.PILOT_POST_PAYLOAD)
    runtime = (end or time.time()) - start if start else 0.0
    if runtime < threshold:
        return []
    text = str(_setting(ctx, "stageout_long_retry_waits", "300,600"))
    waits = [_seconds(part, -1.0) for part in text.replace(";", ",").split(",") if part.strip()]
    taken = int(job.extra_metrics.get(METRIC, 0) or 0)  # the pauses are per job: outputs and log share them
    return [wait for wait in waits if wait > 0][taken:]


def remaining_lifetime(ctx: PilotContext, job: JobData) -> float:
    """Seconds left before the job's maximum walltime or the pilot's lifetime forces the final update."""
    left = float("inf")
    if getattr(job, "maxwalltime", 0):
        life = Lifetime(float(job.maxwalltime), start_wall=job.starttime)
        left = min(left, life.hard_deadline - life.elapsed())
    limit = float(getattr(getattr(ctx, "args", None), "lifetime", 0) or 0)
    if limit:
        life = Lifetime(limit, start_wall=ctx.start_time)
        left = min(left, life.hard_deadline - life.elapsed())
    return left


def long_pause(ctx: PilotContext, job: JobData, wanted: float, number: int) -> bool:
    """Pause up to ``wanted`` s before retry ``number``, heartbeats going on; False: no retry (no time, stop)."""
    reserve = _seconds(_setting(ctx, "stageout_long_retry_reserve", 300), 300.0)
    pause = min(wanted, remaining_lifetime(ctx, job) - reserve)
    if pause <= 0:
        logger.warning("job %s: no time left for a long-break stage-out retry (%.0f s of lifetime left, %.0f s "
                       "reserved)", job.jobid, remaining_lifetime(ctx, job), reserve)
        return False
    stop = ctx.events.graceful_stop
    period = _seconds(config.Pilot.get("heartbeat", 1800), 1800.0) or 1800.0
    logger.warning("job %s: stage-out failed transiently: long-break retry %d after a pause of %.0f s",
                   job.jobid, number, pause)
    job.extra_metrics[METRIC] = int(job.extra_metrics.get(METRIC, 0) or 0) + 1
    deadline = time.monotonic() + pause
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if stop.wait(min(period, left)):
            logger.warning("job %s: the pilot is stopping: long-break stage-out retry abandoned", job.jobid)
            return False
        if deadline - time.monotonic() > 0:
            reporter: Optional[Any] = getattr(ctx, "reporter", None)
            if reporter is not None:
                reporter.heartbeat(job)  # the monitor sends none in stage-out: the server must not lose the job
    logger.info("job %s: long-break pause over: stage-out retry %d", job.jobid, number)
    return True
