"""Monitors: the job monitor (heartbeats, server commands, per-job checks) and the pilot monitor
(lifetime, thread health).

Every periodic check waits on the stop event, so a stop ends it at once. Time is measured with the
monotonic clock: a node that is suspended and resumed does not produce a false verdict.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.control.context import PilotContext
from pilot.util.config import config

logger = logging.getLogger(__name__)

#: the job monitor wakes at least this often (seconds) to run due checks
TICK = 1.0


class PeriodicCheck:
    """A check that runs every ``period`` seconds (monotonic)."""

    def __init__(self, name: str, period: float, func: Callable[[Any], None]) -> None:
        self.name = name
        self.period = max(0.1, float(period))
        self.func = func
        self.next_run = time.monotonic() + self.period

    def due(self, now: float) -> bool:
        return now >= self.next_run

    def run(self, arg: Any, now: float) -> None:
        self.next_run = now + self.period
        self.func(arg)


def heartbeat_period(job: Any) -> float:
    """1800 s normally, 60 s when the job or the server asked for debug mode."""
    return float(config.Pilot.debug_heartbeat if job.debug else config.Pilot.heartbeat)


class JobMonitor:
    """Watch the running job(s): heartbeats and server commands (more checks plug in via ``checks``)."""

    def __init__(self, ctx: PilotContext) -> None:
        self.ctx = ctx
        self.checks: list = []
        self.last_beat: dict = {}  # jobid -> monotonic time of the last heartbeat

    def add_check(self, name: str, period: float, func: Callable[[Any], None]) -> None:
        self.checks.append(PeriodicCheck(name, period, func))

    def run(self) -> None:
        """Loop until the pilot stops."""
        stop = self.ctx.events.graceful_stop
        while not stop.wait(self._next_wait()):
            now = time.monotonic()
            for job in self._running_jobs():
                self._maybe_heartbeat(job, now)
            for check in self.checks:
                if check.due(now):
                    try:
                        check.run(self.ctx, now)
                    except Exception as exc:  # a failing check must not end the monitor
                        logger.exception("check %s failed: %s", check.name, exc)

    def _next_wait(self) -> float:
        now = time.monotonic()
        waits = [TICK * 10]
        waits += [max(0.05, c.next_run - now) for c in self.checks]
        for job in self._running_jobs():
            last = self.last_beat.get(job.jobid, self.ctx.reporter.last_update.get(job.jobid, now))
            waits.append(max(0.05, last + heartbeat_period(job) - now))
        return min(waits)

    def _running_jobs(self) -> list:
        with self.ctx.lock:
            return [job for jobid, job in self.ctx.current_jobs.items() if jobid in self.ctx.executors]

    def _maybe_heartbeat(self, job: Any, now: float) -> None:
        last = max(self.last_beat.get(job.jobid, 0.0), self.ctx.reporter.last_update.get(job.jobid, 0.0))
        if last and now - last < heartbeat_period(job):
            return
        executor = self.ctx.executors.get(job.jobid)
        if executor is not None:
            cpu = executor.cpu_seconds()
            if cpu is not None:
                job.cpuconsumptiontime = cpu
        self.last_beat[job.jobid] = now
        reply = self.ctx.reporter.heartbeat(job)
        if reply:
            handle_server_command(self.ctx, job, reply.get("command"))


def handle_server_command(ctx: PilotContext, job: Any, command: Optional[str]) -> None:
    """Act on the ``command`` of an updateJob reply (compat §4.6)."""
    if not command or command == "NULL":
        return
    command = str(command).strip()
    logger.info("job %s: server command %r", job.jobid, command)
    if "tobekilled" in command:
        job.fail(ErrorCodes.PANDAKILL, "the job was killed by the server (tobekilled)", priority=True)
        executor = ctx.executors.get(job.jobid)
        if executor is not None:
            executor.kill("tobekilled from the server")
        ctx.events.abort_job.set()
    elif command in ("debug", "debugon"):
        job.debug = True
    elif command == "debugoff":
        job.debug = False
        job.debug_stdout = ""
    elif command == "softkill":
        logger.info("job %s: softkill recorded", job.jobid)
    else:
        job.server_command = command


class PilotMonitor:
    """Pilot lifetime and the health of the component threads."""

    def __init__(self, ctx: PilotContext, lifetime: float) -> None:
        self.ctx = ctx
        self.lifetime = lifetime
        self.start = time.monotonic()

    def on_thread_failure(self, name: str, error: str) -> None:
        """A component died: fail the job with 1319 and stop the pilot."""
        logger.error("component %s died (%s): aborting", name, error)
        self.ctx.pilot_error = self.ctx.pilot_error or ErrorCodes.INTERNALPILOTPROBLEM
        self.ctx.abort(ErrorCodes.INTERNALPILOTPROBLEM, f"pilot component {name} failed: {error}")

    def run(self) -> None:
        """Watch the lifetime; stop the pilot early enough to report."""
        stop = self.ctx.events.graceful_stop
        period = float(getattr(config.Pilot, "thread_check", 10) or 10)
        while not stop.wait(period):
            elapsed = time.monotonic() - self.start
            if self.lifetime and elapsed > self.lifetime:
                logger.warning("the pilot lifetime (%d s) has been reached", self.lifetime)
                self.ctx.abort(ErrorCodes.REACHEDMAXTIME, f"pilot lifetime {int(self.lifetime)} s reached")
                return
