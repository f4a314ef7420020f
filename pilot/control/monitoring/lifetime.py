"""Lifetimes: the pilot's own (queue maxtime, else ``-l``) and a job's maximum walltime (maxWalltime).

Both stop work early enough to stage out and report before the limit, never after it. The
reserve is ``lifetime_safety_margin`` seconds, at most half of the limit:

- at ``limit - margin`` the payload is killed and the job fails with 1213 REACHEDMAXTIME; it then
  goes through stage-out (its log is uploaded) and its final update is sent;
- at ``limit - margin / 2`` (pilot lifetime only) whatever is still in the pilot is pushed through
  its final update directly, so the report always leaves before the limit.

Elapsed time is the larger of the wall-clock and the monotonic elapsed time: a clock set back or a
suspended node never makes the pilot overrun its slot.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable, Optional

from pilot.common.errorcodes import ErrorCodes

from pilot.util.processes import CLOCK_TICKS, read_stat

from .base import JobCheck, Verdict, WatchedJob, setting

logger = logging.getLogger(__name__)


def process_start_time(pid: Optional[int] = None) -> Optional[float]:
    """Wall-clock time a process started (this one by default), from /proc; None when unknown."""
    info = read_stat(pid or os.getpid())
    try:
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if info is None:
        return None
    return time.time() - (uptime - info.starttime / CLOCK_TICKS)


def safety_margin(limit: float) -> float:
    """Seconds reserved for stage-out and the final update (``lifetime_safety_margin``, at most limit/2)."""
    return max(0.0, min(setting("lifetime_safety_margin", 600.0), limit / 2.0))


def slot_limited(limit: float, start_wall: float, remaining: Optional[Callable[[], Optional[float]]] = None,
                 now: Optional[float] = None) -> float:
    """``limit`` cut to the end of the batch slot (Slurm, HTCondor, PBS, LSF), counted from ``start_wall``.

    A pilot must never outlive its slot: when the batch system ends the slot before ``limit`` seconds
    have passed, the slot's end is the limit (see :mod:`pilot.util.batch`).
    """
    from pilot.util.batch import remaining_seconds

    left = (remaining or (lambda: remaining_seconds(started=start_wall)))()
    if left is None:
        return limit
    now = time.time() if now is None else now
    slot = max(0.0, now - start_wall + left)
    if not limit or slot < limit:
        logger.info("the batch slot ends in %d s: pilot lifetime %d s instead of %d s", int(left), int(slot),
                    int(limit or 0))
        return slot
    return limit


class Lifetime:
    """Elapsed time since a start, robust against clock changes, and the two deadlines of a limit."""

    def __init__(self, limit: float, start_wall: Optional[float] = None, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.wall = wall
        self.monotonic = monotonic
        self.limit = float(limit or 0)
        self.start_wall = wall() if start_wall is None else start_wall
        # the monotonic time that corresponds to start_wall
        self.start_mono = monotonic() - max(0.0, wall() - self.start_wall)
        self.margin = safety_margin(self.limit) if self.limit else 0.0

    def elapsed(self) -> float:
        return max(self.wall() - self.start_wall, self.monotonic() - self.start_mono)

    @property
    def soft_deadline(self) -> float:
        """Stop the payload from here on (elapsed seconds)."""
        return self.limit - self.margin

    @property
    def hard_deadline(self) -> float:
        """Send the final updates from here on, whatever state the jobs are in."""
        return self.limit - self.margin / 2.0

    def soft_reached(self) -> bool:
        return bool(self.limit) and self.elapsed() >= self.soft_deadline

    def hard_reached(self) -> bool:
        return bool(self.limit) and self.elapsed() >= self.hard_deadline

    def remaining(self) -> float:
        """Seconds to the soft deadline (inf without a limit)."""
        return self.soft_deadline - self.elapsed() if self.limit else float("inf")


class WalltimeCheck(JobCheck):
    """Every ``thread_check`` s: has the job used up its maxWalltime (minus the safety margin)?"""

    name = "walltime"

    def __init__(self, watched: WatchedJob) -> None:
        super().__init__(watched, setting("thread_check", 10.0))
        job = watched.job
        self.lifetime = Lifetime(float(job.maxwalltime or 0), start_wall=job.starttime)

    def run(self, now: float) -> Optional[Verdict]:
        life = self.lifetime
        if not life.limit or not life.soft_reached():
            return None
        diag = (f"the job reached its maximum walltime: {int(life.elapsed())} s used of {int(life.limit)} s "
                f"({int(life.margin)} s kept for stage-out and the final update)")
        return Verdict(ErrorCodes.REACHEDMAXTIME, diag)
