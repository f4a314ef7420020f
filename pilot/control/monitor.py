"""Monitors: the job monitor (heartbeats, server commands, the checks of each running job) and the
pilot monitor (lifetime, health of the component threads).

Both are single threads that sleep on an event until the next check is due, so a stop ends them at
once and nothing polls faster than the shortest configured period (the job monitor looks for a
newly started payload once a second while a job is in the pilot). Time is measured on the
monotonic clock: a node that is suspended and resumed does not produce a false verdict.

The job monitor builds a :class:`JobWatch` for each job whose payload has started (the checks of
:mod:`pilot.control.monitoring`), applies their verdicts (fail the job with the code, kill the
payload tree) and sends a heartbeat every ``heartbeat`` s (``debug_heartbeat`` s in debug mode).
Server commands in the replies are handled by :func:`handle_server_command` (compat 4.6).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.control.context import PilotContext
from pilot.control.monitoring import Verdict, WatchedJob, job_checks
from pilot.control.monitoring.base import setting
from pilot.control.monitoring.debug import DebugOutput
from pilot.control.monitoring.lifetime import Lifetime, process_start_time, slot_limited
from pilot.control.monitoring.proxy import ProxyCheck
from pilot.control.reporting import job_substate
from pilot.info.jobdata import JobPhase
from pilot.util.config import config
from pilot.util.debugcommands import is_debug_command
from pilot.util.processes import cores_in_use, tree_table

if TYPE_CHECKING:
    from pilot.control.payloads.generic import PayloadExecutor
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

#: while a job is in the pilot, the job monitor looks for a newly started payload this often (s)
TICK = 1.0
#: without any job in the pilot
IDLE_TICK = 5.0
#: phases in which a job gets heartbeats from the job monitor
HEARTBEAT_PHASES = (JobPhase.STAGEIN, JobPhase.PAYLOAD)
#: seconds between two actual core count samples of a running payload (Pilot 2's monitoring cycle)
CORE_SAMPLE_PERIOD = 60.0


class PeriodicCheck:
    """A pilot-level check that runs every ``period`` seconds (monotonic); ``func(ctx)`` may return a Verdict."""

    def __init__(self, name: str, period: float, func: Callable[[Any], Any]) -> None:
        self.name = name
        self.period = max(0.1, float(period))
        self.func = func
        self.next_run = time.monotonic() + self.period

    def due(self, now: float) -> bool:
        return now >= self.next_run

    def run(self, arg: Any, now: float) -> Any:
        self.next_run = now + self.period
        return self.func(arg)


def heartbeat_period(job: JobData) -> float:
    """1800 s normally, 60 s when the job or the server asked for debug mode."""
    return float(config.Pilot.debug_heartbeat if job.debug else config.Pilot.heartbeat)


def apply_verdict(job: JobData, executor: PayloadExecutor, verdict: Verdict) -> None:
    """Fail ``job`` with the verdict's code and stop its payload (1363 is a request, undone after the kill)."""
    level = logging.WARNING if verdict.code == ErrorCodes.KILLPAYLOAD else logging.ERROR
    logger.log(level, "job %s: %s (code %d)", job.jobid, verdict.diag, verdict.code)
    job.fail(verdict.code, verdict.diag)
    if verdict.kill and executor is not None:
        executor.kill(verdict.diag)


class JobWatch:
    """The checks and the debug output of one job whose payload runs."""

    def __init__(self, ctx: PilotContext, job: JobData, executor: PayloadExecutor) -> None:
        self.watched = WatchedJob(ctx, job, executor)
        self.checks = job_checks(self.watched)
        self.debug = DebugOutput(self.watched)
        self.verdict: Optional[Verdict] = None
        logger.info("job %s: watching the payload (%s)", job.jobid,
                    ", ".join(f"{c.name} every {c.period:g} s" for c in self.checks))

    def run_due(self, now: float) -> Optional[Verdict]:
        """Run the checks that are due; the first verdict ends the checking of this job."""
        if self.verdict is not None:
            return None
        for check in self.checks:
            try:
                verdict = check.run_if_due(now)
            except Exception as exc:  # a failing check must not end the monitor
                logger.exception("job %s: check %s failed: %s", self.watched.job.jobid, check.name, exc)
                continue
            if verdict is not None:
                logger.debug("job %s: check %s decided: %s (code %d, kill %s)", self.watched.job.jobid,
                             getattr(check, "name", check), verdict.diag, verdict.code, verdict.kill)
                self.verdict = verdict
                return verdict
        return None

    def next_due(self) -> float:
        if self.verdict is not None or not self.checks:
            return float("inf")
        return min(check.next_run for check in self.checks)

    def close(self) -> None:
        for check in self.checks:
            try:
                check.close()
            except Exception as exc:
                logger.warning("job %s: closing check %s failed: %s", self.watched.job.jobid, check.name, exc)


class JobMonitor:
    """Watch the jobs in the pilot: per-job checks, heartbeats and server commands."""

    def __init__(self, ctx: PilotContext) -> None:
        self.ctx = ctx
        self.checks: list = []
        self.last_beat: dict = {}  # jobid -> monotonic time of the last heartbeat
        self.watches: dict = {}  # jobid -> JobWatch of a running payload
        self.unwatched: set = set()  # jobids whose checks could not be set up
        self.core_sampled: dict = {}  # jobid -> monotonic time of the last actual core count sample
        proxy = ProxyCheck()
        self.add_check(proxy.name, proxy.period, proxy)

    def add_check(self, name: str, period: float, func: Callable[[Any], Any]) -> None:
        """Add a pilot-level check ``func(ctx)``; a Verdict it returns applies to every running job."""
        self.checks.append(PeriodicCheck(name, period, func))

    def run(self) -> None:
        """Loop until the pilot stops."""
        stop = self.ctx.events.graceful_stop
        try:
            while not stop.wait(self._next_wait()):
                self.tick(time.monotonic())
        finally:
            for watch in self.watches.values():
                watch.close()
            self.watches.clear()

    def tick(self, now: float) -> None:
        """One round: follow started and ended payloads, run due checks, send due heartbeats."""
        running = self._running()
        self._sync_watches(running)
        for job, executor in running:
            watch = self.watches.get(job.jobid)
            verdict = watch.run_due(now) if watch is not None else None
            if verdict is not None:
                apply_verdict(job, executor, verdict)
            if now - self.core_sampled.get(job.jobid, -CORE_SAMPLE_PERIOD) >= CORE_SAMPLE_PERIOD:
                self.core_sampled[job.jobid] = now
                sample_core_count(job, executor)
        for check in self.checks:
            if check.due(now):
                try:
                    verdict = check.run(self.ctx, now)
                except Exception as exc:  # a failing check must not end the monitor
                    logger.exception("check %s failed: %s", check.name, exc)
                    continue
                if isinstance(verdict, Verdict):
                    for job, executor in running:
                        apply_verdict(job, executor, verdict)
        for job in self._heartbeat_jobs():
            self._maybe_heartbeat(job, now)

    def _next_wait(self) -> float:
        now = time.monotonic()
        waits = [TICK if self.ctx.current_jobs else IDLE_TICK]
        waits += [c.next_run - now for c in self.checks]
        waits += [w.next_due() - now for w in self.watches.values()]
        for job in self._heartbeat_jobs():
            waits.append(self._last_beat(job, now) + heartbeat_period(job) - now)
        return max(0.05, min(waits))

    def _running(self) -> list:
        """(job, executor) of every job whose payload has been started."""
        with self.ctx.lock:
            pairs = [(job, self.ctx.executors[jobid]) for jobid, job in self.ctx.current_jobs.items()
                     if jobid in self.ctx.executors]
        return [(job, ex) for job, ex in pairs if getattr(ex, "proc", None) is not None]

    def _heartbeat_jobs(self) -> list:
        with self.ctx.lock:
            jobs = list(self.ctx.current_jobs.values())
        return [job for job in jobs if getattr(job, "phase", None) in HEARTBEAT_PHASES]

    def _sync_watches(self, running: list) -> None:
        current = {job.jobid for job, _ in running}
        for jobid in [j for j in self.watches if j not in current]:
            logger.info("job %s: the payload has ended: checks stopped", jobid)
            self.core_sampled.pop(jobid, None)
            self.watches.pop(jobid).close()
        for job, executor in running:
            if job.jobid not in self.watches and job.jobid not in self.unwatched:
                try:
                    self.watches[job.jobid] = JobWatch(self.ctx, job, executor)
                except Exception as exc:  # heartbeats go on; the checks of this job are lost
                    logger.exception("job %s: cannot set up its checks: %s", job.jobid, exc)
                    self.unwatched.add(job.jobid)

    def _last_beat(self, job: JobData, now: float) -> float:
        last = max(self.last_beat.get(job.jobid, 0.0), self.ctx.reporter.last_update.get(job.jobid, 0.0))
        return last or now

    def _maybe_heartbeat(self, job: JobData, now: float) -> None:
        last = max(self.last_beat.get(job.jobid, 0.0), self.ctx.reporter.last_update.get(job.jobid, 0.0))
        if last and now - last < heartbeat_period(job):
            return
        executor = self.ctx.executors.get(job.jobid)
        if executor is not None:
            cpu = executor.cpu_seconds()
            if cpu is not None:
                job.cpuconsumptiontime = cpu
        watch = self.watches.get(job.jobid)
        if watch is not None and job.debug:
            reason = watch.debug.refresh()
            if reason and executor is not None:
                executor.kill(reason)
        if job.phase not in HEARTBEAT_PHASES:
            return  # the job moved on meanwhile (its final update may be under way)
        self.last_beat[job.jobid] = now
        logger.info("job %s: monitoring: state %s, sub-state %s, heartbeat due", job.jobid, job.state,
                    job_substate(job))
        reply = self.ctx.reporter.heartbeat(job)
        if reply:
            handle_server_command(self.ctx, job, reply.get("command"))


def sample_core_count(job: JobData, executor: PayloadExecutor) -> None:
    """Add a sample of the payload's actual core count (distinct CPUs its processes run on) to the job.

    The mean of the samples is the ``meanCoreCount`` of the updates (Pilot 2's ``job.corecounts``).
    """
    proc = getattr(executor, "proc", None)
    pid = getattr(proc, "pid", None)
    poll = getattr(proc, "poll", None)
    if not isinstance(pid, int) or not isinstance(getattr(job, "corecounts", None), list) \
            or (callable(poll) and poll() is not None):
        return
    try:
        count = cores_in_use(pid, tree_table(pid))
    except OSError as exc:
        logger.debug("job %s: no core count sample: %s", job.jobid, exc)
        return
    if count > 0:
        job.corecounts.append(count)
        logger.info("job %s: monitoring: state %s, sub-state %s, actual core count %d", job.jobid, job.state,
                    job_substate(job), count)


def handle_server_command(ctx: PilotContext, job: JobData, command: Optional[str]) -> None:
    """Act on the ``command`` of an updateJob reply (compat 4.6)."""
    if not command or str(command).strip().upper() == "NULL":
        return
    command = str(command).strip()
    lowered = command.lower()
    logger.info("job %s: server command %r", job.jobid, command)
    if "tobekilled" in lowered:
        job.fail(ErrorCodes.PANDAKILL, "the job was killed by the server (tobekilled)", priority=True)
        executor = ctx.executors.get(job.jobid)
        if executor is not None:
            executor.kill("tobekilled from the server")
        ctx.events.abort_job.set()
    elif lowered in ("debug", "debugon"):
        job.debug = True
    elif lowered == "debugoff":
        job.debug = False
        job.debug_stdout = ""
        job.server_command = ""
    elif lowered in ("softkill", "nocleanup"):
        logger.info("job %s: %s recorded (no action)", job.jobid, lowered)
    elif is_debug_command(command):
        job.debug = True
        job.server_command = command
    else:
        logger.warning("job %s: unknown server command %r ignored", job.jobid, command)


class PilotMonitor:
    """Pilot lifetime and the health of the component threads.

    - Lifetime (queue maxtime, else ``-l``): see :mod:`pilot.control.monitoring.lifetime`. At the
      soft deadline running payloads are killed and their jobs fail with 1213 (they are still staged
      out and reported), jobs that have not started their payload are aborted, and no new job is
      taken; at the hard deadline whatever is left is reported directly.
    - A component that dies with an exception (the supervisor calls :meth:`on_thread_failure`) or
      ends while jobs are still in the pilot aborts the job with 1319. A job that is still in the
      pilot ``thread_failure_grace`` seconds later (it was held by the dead component) is pushed
      through its final update here.
    """

    def __init__(self, ctx: PilotContext, lifetime: float, start_wall: Optional[float] = None) -> None:
        self.ctx = ctx
        self.lifetime = lifetime
        if start_wall is None:  # the lifetime counts from the start of the pilot process
            start_wall = min(ctx.start_time, process_start_time() or ctx.start_time)
        lifetime = slot_limited(lifetime, start_wall)  # never beyond the end of the batch slot
        self.lifetime = lifetime
        self.life = Lifetime(lifetime, start_wall=start_wall)
        self.start = time.monotonic()
        self.failed_at: Optional[float] = None  # monotonic time of the first component failure
        self.suspects: dict = {}  # worker name -> rounds it was found ended without a reason
        self.soft_done = False
        self.hard_done = False
        self.rescued: set = set()
        self._halt = False
        logger.info("pilot lifetime %d s: payloads are stopped after %d s, reports forced after %d s",
                    int(self.life.limit), int(self.life.soft_deadline), int(self.life.hard_deadline))

    def on_thread_failure(self, name: str, error: str, code: int = ErrorCodes.INTERNALPILOTPROBLEM) -> None:
        """A component or critical background activity died: fail the job with ``code`` (1319) and stop the pilot."""
        logger.error("component %s died (%s): aborting", name, error)
        if self.failed_at is None:
            self.failed_at = time.monotonic()
        self.ctx.pilot_error = self.ctx.pilot_error or code
        self.ctx.abort(code, f"pilot component {name} failed: {error}")

    def stop(self) -> None:
        """End :meth:`run` (the pilot is done)."""
        self._halt = True
        self.ctx.queues.wake_all()

    def _done(self) -> bool:
        return self._halt or self.ctx.finished()

    def run(self) -> None:
        """Check the lifetime and the components every ``thread_check`` s until the pilot is done."""
        period = setting("thread_check", 10.0)
        while True:
            # sleeps on the queues' condition: woken by every put, stop and finished job
            self.ctx.queues.get((), timeout=self._wait(period), until=self._done)
            if self._done():
                return
            self.check_lifetime()
            self.check_components()
            self.rescue_stuck_jobs()

    def _wait(self, period: float) -> float:
        if not self.life.limit:
            return period
        to_soft = self.life.soft_deadline - self.life.elapsed()
        to_hard = self.life.hard_deadline - self.life.elapsed()
        upcoming = [t for t in (to_soft, to_hard) if t > 0]
        return max(0.05, min([period] + upcoming))

    # ------------------------------------------------------------------ lifetime
    def check_lifetime(self) -> None:
        life = self.life
        if not life.limit:
            return
        if not self.soft_done and life.soft_reached():
            self.soft_done = True
            self._expire(f"the pilot lifetime is running out: {int(life.elapsed())} s of {int(life.limit)} s used, "
                         f"{int(life.margin)} s kept for stage-out and the final update")
        if not self.hard_done and life.hard_reached():
            self.hard_done = True
            logger.error("the pilot reached %d s of its %d s lifetime: sending the final updates now",
                         int(life.elapsed()), int(life.limit))
            self.ctx.events.abort_job.set()
            for job in self._jobs():
                job.fail(ErrorCodes.REACHEDMAXTIME, "the pilot lifetime ran out before the job ended")
                self._kill(job, "pilot lifetime")
                self._finish(job)

    def _expire(self, diag: str) -> None:
        logger.error(diag)
        for job in self._jobs():
            if job.phase in (JobPhase.STAGEOUT, JobPhase.FINISHED, JobPhase.FAILED):
                continue  # already on its way out
            job.fail(ErrorCodes.REACHEDMAXTIME, diag)
            if not self._kill(job, diag) and job.phase is not JobPhase.PAYLOAD:
                # not started yet: make sure it never starts
                self.ctx.events.abort_job.set()
        self.ctx.stop("pilot lifetime")

    def _jobs(self) -> list:
        with self.ctx.lock:
            return list(self.ctx.current_jobs.values())

    def _kill(self, job: JobData, reason: str) -> bool:
        executor = self.ctx.executors.get(job.jobid)
        if executor is None:
            return False
        executor.kill(reason)
        return True

    # ------------------------------------------------------------------ components
    def check_components(self) -> None:
        """A critical component that ended (without an exception) while jobs remain is a failure too."""
        sup = self.ctx.supervisor
        if sup is None or not self.ctx.current_jobs:
            self.suspects.clear()
            return
        for worker in list(sup.workers.values()):
            if not worker.critical or worker.error or worker.thread.is_alive():
                self.suspects.pop(worker.name, None)
                continue
            self.suspects[worker.name] = self.suspects.get(worker.name, 0) + 1
            if self.suspects[worker.name] == 2:  # seen twice: not a job that is just completing
                worker.error = "ended while jobs were still in the pilot"
                self.on_thread_failure(worker.name, worker.error)

    def rescue_stuck_jobs(self) -> None:
        """After a component failure, report the jobs it left behind."""
        if self.failed_at is None:
            return
        grace = setting("thread_failure_grace", 30.0)
        if time.monotonic() - self.failed_at < grace:
            return
        for job in self._jobs():
            if job.jobid not in self.rescued:
                logger.error("job %s is still in the pilot %.0f s after a component failed: reporting it now",
                             job.jobid, grace)
                self._finish(job)

    def _finish(self, job: JobData) -> None:
        from pilot.control.job import finish_job

        if job.jobid in self.rescued:
            return
        self.rescued.add(job.jobid)
        if not job.errors:
            job.fail(ErrorCodes.INTERNALPILOTPROBLEM, "the job was left behind by a pilot component")
        try:
            finish_job(self.ctx, job)
        except Exception as exc:
            logger.exception("job %s: the final update failed: %s", job.jobid, exc)
            self.ctx.job_done(job.jobid)
