"""Looping job: no file in the job's work dir changed within the looping limit -> kill, 1150.

Progress is any change of the work dir's files (a file appeared, went, or changed size or
modification time), apart from the pilot's own files and those the experiment plug-in calls noise
(``loopingjob_definitions.remove_unwanted_files``). Idle time is counted on the monotonic clock
from the last change, minus the time the payload was stopped (SIGSTOP), so neither a suspended
node nor a stopped and resumed payload is called looping; wall-clock file times are only used to
place a change inside the last check interval.

The limit: the job's maxCpuCount when it is at least ``looping_limit_min_default``, else the
larger of ``looping_limit_default`` and maxCpuCount (seconds).
"""

from __future__ import annotations

import logging
import os
import stat
import time
from typing import Callable, List, Optional, Tuple

from pilot.common.errorcodes import ErrorCodes
from pilot.info.jobdata import JobData
from pilot.util.filehandling import tree_entries
from pilot.util.memorymonitor import OUTPUT_FILE, PRMON_LOG, SUMMARY_FILE

from .base import JobCheck, Verdict, WatchedJob, setting

logger = logging.getLogger(__name__)

#: files the pilot itself writes into the job's work dir while the payload runs
PILOT_FILES = frozenset({OUTPUT_FILE, SUMMARY_FILE, PRMON_LOG, "payload_guard.json", "payload_guard.json.tmp",
                         "pilot_kill_payload", "pilotlog.txt"})


def looping_limit(job: JobData) -> int:
    """Seconds without file updates after which the job counts as looping."""
    default = setting("looping_limit_default", 7200, int)
    minimum = setting("looping_limit_min_default", 7200, int)
    maxcpu = int(getattr(job, "maxcpucount", 0) or 0)
    if maxcpu >= minimum:
        return maxcpu
    return max(default, maxcpu)


def scan_files(workdir: str) -> List[Tuple[str, int, int]]:
    """(path, mtime ns, size) of every regular file below ``workdir`` (symlinks are not followed)."""
    return [(entry.path, st.st_mtime_ns, st.st_size) for entry, st in tree_entries(workdir)
            if stat.S_ISREG(st.st_mode)]


class LoopingCheck(JobCheck):
    """Every ``looping_verification_time`` s: has anything in the work dir changed recently enough?"""

    name = "looping"

    def __init__(self, watched: WatchedJob, wall: Callable[[], float] = time.time) -> None:
        super().__init__(watched, setting("looping_verification_time", 900.0))
        self.wall = wall
        self.limit = looping_limit(watched.job)
        self.noise = watched.user_function("loopingjob_definitions", "remove_unwanted_files")
        self.signature, _ = self._snapshot()
        now = time.monotonic()
        self.last_progress = watched.started
        self.last_check = now
        self.paused_at_progress = self._paused(now)
        logger.info("job %s: looping limit %d s (checked every %.0f s)", watched.job.jobid, self.limit, self.period)

    def _paused(self, now: float) -> float:
        pause = self.watched.pause
        return pause.total(now) if pause is not None else 0.0

    def _snapshot(self) -> Tuple[int, float]:
        """A signature of the relevant files and the newest modification time (epoch s)."""
        workdir = self.job.workdir
        files = [f for f in scan_files(workdir) if os.path.basename(f[0]) not in PILOT_FILES]
        if self.noise is not None:
            try:
                kept = set(self.noise(workdir, [f[0] for f in files]))
                files = [f for f in files if f[0] in kept]
            except Exception as exc:  # a plug-in bug must not hide a looping job
                logger.warning("remove_unwanted_files failed: %s", exc)
        newest = max((f[1] for f in files), default=0) / 1e9
        return hash(tuple(sorted(files))), newest

    def run(self, now: float) -> Optional[Verdict]:
        signature, newest = self._snapshot()
        if signature != self.signature:
            # the change happened after the previous check; the file time places it inside the interval
            age = min(max(0.0, self.wall() - newest), max(0.0, now - self.last_check))
            self.last_progress = now - age
            self.paused_at_progress = self._paused(now)
            self.signature = signature
        self.last_check = now
        pause = self.watched.pause
        if pause is not None and pause.paused:
            return None
        idle = (now - self.last_progress) - (self._paused(now) - self.paused_at_progress)
        if idle <= self.limit:
            return None
        diag = (f"looping job: no file in the work dir was updated for {int(idle)} s "
                f"(limit {self.limit} s)")
        return Verdict(ErrorCodes.LOOPINGJOB, diag)
