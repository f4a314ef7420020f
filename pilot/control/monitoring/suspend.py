"""Time the payload did not run: stopped with SIGSTOP (all its processes in state T) or a suspended node.

The looping check subtracts the payload's stopped time from its idle time, so a payload that was
stopped and resumed is not called looping. A suspended node needs nothing extra: the checks
measure time with the monotonic clock, which does not advance while the node sleeps; a jump of
the wall clock against it is only logged.

The fast check (``fast_monitor_time``) samples the payload's process states and also runs the
experiment plug-in's ``monitoring.fast_monitor_tasks(job)``.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from pilot.common.errorcodes import ErrorCodes

from .base import JobCheck, Verdict, WatchedJob, setting

logger = logging.getLogger(__name__)

#: a wall-clock advance this much larger than the monotonic one is reported as a time jump
JUMP_LOG_THRESHOLD = 5.0
STOPPED_STATES = ("T", "t")


class PauseTracker:
    """Accumulates the (monotonic) seconds during which the payload was stopped."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.monotonic = monotonic
        self.wall = wall
        self.paused_total = 0.0
        self.paused_since: Optional[float] = None
        self.last_mono = monotonic()
        self.last_wall = wall()

    @property
    def paused(self) -> bool:
        return self.paused_since is not None

    def update(self, stopped: bool, now: Optional[float] = None) -> None:
        """Record whether the payload is stopped now."""
        now = self.monotonic() if now is None else now
        if stopped and self.paused_since is None:
            self.paused_since = now
            logger.warning("the payload is stopped (SIGSTOP?): its idle time is not counted while it stays stopped")
        elif not stopped and self.paused_since is not None:
            self.paused_total += max(0.0, now - self.paused_since)
            logger.info("the payload runs again after %.0f s stopped", now - self.paused_since)
            self.paused_since = None
        self._note_clock_jump(now)

    def _note_clock_jump(self, now: float) -> None:
        wall = self.wall()
        jump = (wall - self.last_wall) - (now - self.last_mono)
        if abs(jump) > JUMP_LOG_THRESHOLD:
            logger.warning("the wall clock moved %+.0f s against the monotonic clock (node suspended or clock "
                           "reset): time limits use the monotonic clock", jump)
        self.last_mono, self.last_wall = now, wall

    def total(self, now: Optional[float] = None) -> float:
        """Stopped seconds so far, including a stop that is still going on."""
        now = self.monotonic() if now is None else now
        ongoing = max(0.0, now - self.paused_since) if self.paused_since is not None else 0.0
        return self.paused_total + ongoing


def tree_is_stopped(watched: WatchedJob) -> bool:
    """True when the payload has processes and every one of them is stopped."""
    table = watched.tree()
    guards = set(watched.guard_pids())
    states = [info.state for pid, info in table.items() if pid not in guards and info.state not in ("Z", "X")]
    return bool(states) and all(state in STOPPED_STATES for state in states)


class FastCheck(JobCheck):
    """Every ``fast_monitor_time`` s: the payload's stopped state and the plug-in's fast tasks."""

    name = "fast"

    def __init__(self, watched: WatchedJob) -> None:
        super().__init__(watched, setting("fast_monitor_time", 10.0))
        if watched.pause is None:
            watched.pause = PauseTracker()
        self.fast_tasks = watched.user_function("monitoring", "fast_monitor_tasks")

    def run(self, now: float) -> Optional[Verdict]:
        self.watched.pause.update(tree_is_stopped(self.watched), now)
        if self.fast_tasks is None:
            return None
        code = self.fast_tasks(self.job)
        if code:
            return Verdict(int(code), ErrorCodes.get_error_message(int(code)))
        return None
