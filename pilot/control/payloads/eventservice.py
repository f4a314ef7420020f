"""The payload executor of event-service jobs.

:func:`~pilot.control.payloads.selection.executor_for` picks the
executor: an event-service job (``eventService``) gets an :class:`EventServiceExecutor`, a merge
job (``eventServiceMerge``) an :class:`~pilot.control.payloads.eventservicemerge.EventServiceMergeExecutor`,
any other job the generic :class:`~pilot.control.payloads.generic.PayloadExecutor`.

The ES executor is a PayloadExecutor whose ``start``/``wait``/``kill`` run the payload through a
:class:`~pilot.eventservice.workexecutor.WorkExecutor` (chosen by ``--es-executor-type``). The
payload itself still runs under the payload guard started by PayloadExecutor, so the job monitor
measures and stops it as any other payload. Range requests and updates go through the pilot's
communicator (PanDA, REST or Harvester files).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

from pilot.control.reporting import DurableRangeUpdates
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.control.payloads.generic import PayloadExecutor
from pilot.eventservice.communicationmanager import CommunicationManager
from pilot.eventservice.workexecutor import WorkExecutor
from pilot.util.config import config

if TYPE_CHECKING:
    from pilot.control.context import PilotContext
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

__all__ = ["EventServiceExecutor"]

#: seconds the payload may take to exit after "No more events" (compat §12: 30 min)
DEFAULT_EXIT_WAIT = 1800
#: seconds the payload may take to send its first "Ready for events" (AthenaMP initialises first)
DEFAULT_READY_WAIT = 3600


class _GuardLauncher:
    """What the ES process needs to start, wait for and stop its payload: the PayloadExecutor's own calls."""

    def __init__(self, executor: "EventServiceExecutor", record_pid: bool) -> None:
        self.executor = executor
        self.record_pid = record_pid

    def start(self, line: str, env: Optional[dict] = None) -> int:
        self.executor.channel_env = dict(env or {})
        return PayloadExecutor.start(self.executor, line, record_pid=self.record_pid)

    def wait(self) -> dict:
        status = PayloadExecutor.wait(self.executor)
        self.executor.guard_status = dict(status)
        return status

    def kill(self, reason: str = "") -> None:
        PayloadExecutor.kill(self.executor, reason=reason)


class EventServiceExecutor(PayloadExecutor):
    """Run an event-service payload: ranges from the server in, range outputs to storage out."""

    def __init__(self, ctx: PilotContext, job: JobData, es_type: str = "generic") -> None:
        super().__init__(job, ctx.user)
        self.ctx = ctx
        self.es_type = es_type
        self.work: Optional[WorkExecutor] = None
        self.manager: Optional[CommunicationManager] = None
        self.channel_env: dict = {}
        self.guard_status: dict = {}
        self.stopped_by_pilot = ""  # reason of a kill from outside (signal, monitor, server); '' if none

    def command(self) -> str:
        """The experiment's payload command; the container comes later (:meth:`containerise`), as in Pilot 2."""
        return self.user.module("common").get_payload_command(self.job)

    def containerise(self, line: str, socket_file: str) -> str:
        """``line`` (with the channel name already in it) in the job's container, when it has one.

        The channel's socket file is bound into the container at the same path, so AthenaMP reaches
        ``ipc:///tmp/zmq_<name>`` even when the container has a private ``/tmp`` (``--contain``,
        bubblewrap's tmpfs).
        """
        container = self.user.module("container")
        if not container.do_use_container(job=self.job):
            return line
        from pilot.api.container import Bind

        wrapped = container.wrapper(line, job=self.job, workdir=self.job.workdir, env=self.payload_environment(),
                                    binds=[Bind(socket_file, socket_file)])
        if not wrapped:
            raise PilotException("the container plug-in returned no command", code=ErrorCodes.SINGULARITYGENERALFAILURE)
        logger.info("job %s: ES payload in a container, channel socket %s bound in", self.job.jobid, socket_file)
        return wrapped

    def payload_environment(self) -> dict:
        """The generic payload environment plus the channel variables."""
        env = super().payload_environment()
        env.update(self.channel_env)
        return env

    def _stageout_client(self) -> Any:
        from pilot.api.es_data import StageOutESClient
        from pilot.util.tracereport import job_trace

        return StageOutESClient(self.ctx.infosys, logger=logger, trace_report=job_trace(self.job, self.ctx.args),
                                http=self.ctx.http)

    def _options(self) -> dict:
        queuedata = getattr(self.ctx.infosys, "queuedata", None)
        return {
            "communication_manager": self.manager,
            "infosys": self.ctx.infosys,
            "queue": getattr(self.ctx.args, "queue", ""),
            "waiting_time": float(config.Payload.get("es_exit_wait", DEFAULT_EXIT_WAIT) or DEFAULT_EXIT_WAIT),
            "stageout_gap": float(getattr(queuedata, "es_stageout_gap", 0) or 0),
            "client_factory": self._stageout_client,
            "transfer_kwargs": {"output_dir": getattr(self.ctx.args, "output_dir", "") or ""},
        }

    def start(self, line: str, record_pid: bool = True) -> int:
        """Start the work executor; return once the payload runs (its guard's PID)."""
        with self._lock:
            if self.kill_reason:
                raise PilotException(f"payload not started: {self.kill_reason}",
                                     code=ErrorCodes.PAYLOADEXECUTIONFAILURE)
        communicator = DurableRangeUpdates(self.ctx.communicator, getattr(self.ctx.reporter, "outbox", None))
        self.manager = CommunicationManager(communicator=communicator)
        self.manager.start()
        work = WorkExecutor(args={"executor_type": self.es_type}, **self._options())
        ready_wait = float(config.Payload.get("es_ready_timeout", DEFAULT_READY_WAIT) or 0)
        work.set_payload({"executable": line, "workdir": self.job.workdir, "job": self.job,
                          "launcher": _GuardLauncher(self, record_pid), "ready_timeout": ready_wait,
                          "wrap": self.containerise})
        self.work = work
        try:
            work.start()
        except PilotException:
            self._stop_manager()
            raise
        if self.proc is None:
            work.wait()
            self._stop_manager()
            plugin = work.plugin
            failure = getattr(getattr(plugin, "proc", None), "failure", None)
            if isinstance(failure, PilotException):
                raise failure
            raise PilotException(f"the ES payload did not start: {getattr(plugin, 'error', '') or 'unknown reason'}",
                                 code=ErrorCodes.PAYLOADEXECUTIONFAILURE)
        logger.info("job %s: ES payload running (guard pid %s, executor %s)", self.job.jobid, self.proc.pid,
                    self.es_type)
        return self.proc.pid

    def wait(self) -> dict:
        """Block until the payload ended and its last outputs are staged out and reported."""
        assert self.work is not None
        self.work.wait()
        self._stop_manager()
        self._judge()
        return dict(self.guard_status or {"exit_code": -1, "signal": None, "cpu": None})

    def _judge(self) -> None:
        """Turn ES-level problems into job errors (not after a kill: its reason is the job's error)."""
        plugin = self.work.plugin if self.work is not None else None
        proc = getattr(plugin, "proc", None)
        finished = len(getattr(plugin, "finished_ranges", []))
        failed = len(getattr(plugin, "failed_ranges", []))
        logger.info("job %s: %d range(s) finished, %d failed, %d event(s)", self.job.jobid, finished, failed,
                    self.job.nevents)
        if self.stopped_by_pilot or plugin is None or proc is None:
            return
        if proc.failure is not None:
            self.job.fail(proc.failure.get_error_code(), proc.failure.get_detail().splitlines()[0])
        elif proc.timed_out:
            self.job.fail(ErrorCodes.ESRECOVERABLE, "the payload did not exit in time after 'No more events'")
        elif proc.never_ready:
            self.job.fail(ErrorCodes.ESRECOVERABLE, "the payload did not ask for event ranges in time "
                          f"({proc.ready_timeout_text()})")
        elif plugin.error:
            self.job.fail(ErrorCodes.PAYLOADEXECUTIONFAILURE, f"ES executor failed: {plugin.error}")
        elif proc.ranges_sent == 0 and int(self.guard_status.get("exit_code", 0) or 0) == 0:
            diag = "no event ranges to process"
            if proc.range_error is not None:
                diag += f" ({proc.range_error.diag})"
            self.job.fail(ErrorCodes.ESNOEVENTS, diag)

    def kill(self, reason: str = "") -> None:
        """Stop the payload now; finished ranges are still staged out and reported, the others are not."""
        with self._lock:
            self.kill_reason = self.kill_reason or reason or "killed by the pilot"
            self.stopped_by_pilot = self.stopped_by_pilot or self.kill_reason
        if self.work is not None and self.work.plugin is not None:
            self.work.kill(self.kill_reason)
        else:
            super().kill(reason)

    def _stop_manager(self) -> None:
        if self.manager is not None:
            self.manager.stop()
            self.manager.join(timeout=10)
