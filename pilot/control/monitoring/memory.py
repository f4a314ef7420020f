"""Memory: run the memory monitor, put its summary into every heartbeat, enforce the limit (1235).

The monitor is prmon when it is on PATH (``memory_monitor: auto``), else the pilot's own
:class:`pilot.util.memorymonitor.MemoryMonitor`; both write ``memory_monitor_output.txt`` and
``memory_monitor_summary.json`` into the job's work dir, sampling every
``memory_monitor_interval`` seconds. After each sample the summary becomes the job's updateJob
memory fields (maxRSS, maxPSS, avgRSS, totRCHAR, ... through the plug-in's
``utilities.get_memory_monitor_info``).

The limit (checked every ``memory_usage_verification_time`` s) is compared with the payload
tree's largest PSS (RSS where PSS is unknown), in kB:

    limit = memory_limit_factor x queue maxrss (MB) x job coreCount / queue corecount

and, when the queue has no maxrss, ``memory_limit_factor`` x the job's minRamCount (MB). With
neither there is no limit. ``memory_limit_factor`` defaults to 2, as in Pilot 2's ATLAS check.
An experiment plug-in whose ``memory.allow_memory_usage_verifications()`` is true is asked as
well (``memory.memory_usage(job)``); any code it returns (except 1337, an unreadable summary) ends
the job.

The leak estimate, the slope (kB/s) and chi2 of a straight line through pss+swap against time
(:class:`pilot.api.analytics.Analytics`, first and last samples left out), goes into jobMetrics
as ``leak`` and ``chi2`` once there are enough samples.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Optional, Tuple

from pilot.common.errorcodes import ErrorCodes
from pilot.util.memorymonitor import OUTPUT_FILE, SUMMARY_FILE, MemoryMonitor, Prmon

from .base import JobCheck, Verdict, WatchedJob, setting

if TYPE_CHECKING:
    from pilot.info.queuedata import QueueData
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

_MAX_FIELDS = {"maxRSS": "rss", "maxVMEM": "vmem", "maxSWAP": "swap", "maxPSS": "pss"}
_AVG_FIELDS = {"avgRSS": "rss", "avgVMEM": "vmem", "avgSWAP": "swap", "avgPSS": "pss"}
_IO_FIELDS = {"totRCHAR": "rchar", "totWCHAR": "wchar", "totRBYTES": "read_bytes", "totWBYTES": "write_bytes"}
_RATE_FIELDS = {"rateRCHAR": "rchar", "rateWCHAR": "wchar", "rateRBYTES": "read_bytes", "rateWBYTES": "write_bytes"}


def memory_limit_kb(job: JobData, queuedata: Optional[QueueData]) -> Tuple[int, str]:
    """(limit in kB, where it came from); (0, '') when there is no limit."""
    factor = setting("memory_limit_factor", 2.0)
    if factor <= 0:
        return 0, ""
    maxrss = int(getattr(queuedata, "maxrss", 0) or 0)
    if maxrss > 0:
        queue_cores = max(1, int(getattr(queuedata, "corecount", 1) or 1))
        job_cores = max(1, int(getattr(job, "corecount", 1) or 1))
        limit = factor * maxrss * job_cores / queue_cores
        return int(limit * 1024), f"{factor:g} x queue maxrss {maxrss} MB x {job_cores}/{queue_cores} cores"
    minram = int(getattr(job, "minramcount", 0) or 0)
    if minram > 0:
        return int(factor * minram * 1024), f"{factor:g} x job minRamCount {minram} MB"
    return 0, ""


def summary_fields(summary: dict) -> dict:
    """The updateJob memory fields (compat 4.4) from a prmon-style summary."""
    maxima = summary.get("Max", {}) if isinstance(summary, dict) else {}
    averages = summary.get("Avg", {}) if isinstance(summary, dict) else {}
    out = {}
    for target, source, table in ([(t, s, maxima) for t, s in _MAX_FIELDS.items()]
                                  + [(t, s, averages) for t, s in _AVG_FIELDS.items()]
                                  + [(t, s, maxima) for t, s in _IO_FIELDS.items()]
                                  + [(t, s, averages) for t, s in _RATE_FIELDS.items()]):
        value = table.get(source)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[target] = int(value)
    return out


def update_leak(job: JobData) -> None:
    """Put the leak estimate (slope of pss+swap against time, kB/s) and its chi2 into the job's metrics."""
    path = os.path.join(job.workdir, OUTPUT_FILE)
    if not os.path.exists(path):
        return
    from pilot.api.analytics import Analytics  # loaded once a time series exists, not at pilot start

    fitted = Analytics().get_fitted_data(path, x_name="Time", y_name="pss+swap", precision=2, tails=False)
    if fitted.get("slope") != "":
        job.extra_metrics = dict(job.extra_metrics, leak=fitted["slope"], chi2=fitted["chi2"])


def choose_monitor(watched: WatchedJob) -> Any:
    """prmon or the pilot's own monitor, as ``memory_monitor`` says (auto, prmon, internal, off)."""
    mode = str(setting("memory_monitor", "auto", str)).strip().lower()
    pid = watched.guard_pid
    if mode in ("off", "none", "false", "no") or pid is None:  # no payload process: nothing to watch
        return None
    interval = setting("memory_monitor_interval", 60.0)
    if mode == "prmon" or (mode == "auto" and Prmon.available()):
        monitor = Prmon(pid, watched.job.workdir, interval)
        try:
            monitor.start()
            return monitor
        except OSError as exc:
            logger.warning("cannot start prmon (%s): using the pilot's own memory monitor", exc)
    return MemoryMonitor(pid, watched.job.workdir)


class MemorySampler(JobCheck):
    """Every ``memory_monitor_interval`` s: one sample, fresh memory fields and leak estimate for the updates."""

    name = "memory_monitor"

    def __init__(self, watched: WatchedJob, monitor: Any) -> None:
        super().__init__(watched, setting("memory_monitor_interval", 60.0))
        self.monitor = monitor
        self.next_run = watched.started  # the first sample at once

    def run(self, now: float) -> Optional[Verdict]:
        if self.monitor.sample() is not None:
            self.publish()
            update_leak(self.job)
        return None

    def publish(self) -> None:
        """Put the current summary into the job's memory fields (a new dict: the reporter may be reading)."""
        fields = self.fields()
        if fields:
            self.job.memory_summary = fields

    def fields(self) -> dict:
        getter = self.watched.user_function("utilities", "get_memory_monitor_info")
        if getter is not None:
            try:
                fields = getter(self.job.workdir, SUMMARY_FILE)
                if fields:
                    return dict(fields)
            except Exception as exc:
                logger.warning("utilities.get_memory_monitor_info failed: %s", exc)
        return summary_fields(self.monitor.summary())

    def close(self) -> None:
        stop = getattr(self.monitor, "stop", None)
        if stop is not None:
            stop()
        self.publish()
        update_leak(self.job)


class MemoryCheck(JobCheck):
    """Every ``memory_usage_verification_time`` s: the memory limit and the plug-in's check."""

    name = "memory"

    def __init__(self, watched: WatchedJob, monitor: Any) -> None:
        super().__init__(watched, setting("memory_usage_verification_time", 60.0))
        self.monitor = monitor
        self.limit_kb, self.source = memory_limit_kb(watched.job, watched.queuedata())
        if self.limit_kb:
            logger.info("job %s: memory limit %d kB (%s)", watched.job.jobid, self.limit_kb, self.source)
        else:
            logger.info("job %s: no memory limit (neither queue maxrss nor job minRamCount)", watched.job.jobid)
        allow = watched.user_function("memory", "allow_memory_usage_verifications")
        self.user_check = watched.user_function("memory", "memory_usage") if allow is not None and allow() else None

    def run(self, now: float) -> Optional[Verdict]:
        verdict = self.check_limit()
        if verdict is None and self.user_check is not None:
            code, diag = self.user_check(self.job)
            if code == ErrorCodes.BADMEMORYMONITORJSON:
                logger.warning("job %s: %s (ignored)", self.job.jobid, diag)
            elif code:
                verdict = Verdict(int(code), diag or ErrorCodes.get_error_message(int(code)))
        return verdict

    def check_limit(self) -> Optional[Verdict]:
        if not self.limit_kb:
            return None
        maxima = self.monitor.summary().get("Max", {})
        used = int(maxima.get("pss") or maxima.get("rss") or 0)
        if used <= self.limit_kb:
            logger.debug("job %s: memory %d kB within the limit of %d kB", self.job.jobid, used, self.limit_kb)
            return None
        diag = f"payload exceeded the memory limit: {used} kB > {self.limit_kb} kB ({self.source})"
        return Verdict(ErrorCodes.PAYLOADEXCEEDMAXMEM, diag)


def memory_checks(watched: WatchedJob) -> list:
    """The sampler and the limit check of one job, sharing one monitor ([] when monitoring is off)."""
    monitor = choose_monitor(watched)
    if monitor is None:
        return []
    return [MemorySampler(watched, monitor), MemoryCheck(watched, monitor)]
