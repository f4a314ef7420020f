"""The generic payload executor: runs one job's payload under the payload guard and collects its results."""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import TYPE_CHECKING, Any, List, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.info.jobdata import JobData
from pilot.util.background import job_priority
from pilot.util.config import config
from pilot.util.guardedprocess import (ISOLATION_MODES, PILOT_ROOT, GuardedProcess, GuardSpec,  # noqa: F401
                                       credential_isolation_mode, payload_user_ids, process_isolation_mode)
from pilot.util.proxy import fetch_payload_proxy, isolate_credentials, masked_credential_paths

if TYPE_CHECKING:
    from pilot.control.context import Communicator, PluginLoader

logger = logging.getLogger(__name__)

GUARD_STATUS = "payload_guard.json"
#: seconds the guard waits between SIGTERM and SIGKILL of the payload tree
KILL_GRACE = 10.0


class PayloadExecutor:
    """Start, watch and stop one payload."""

    def __init__(self, job: JobData, user: PluginLoader, env: Optional[dict] = None, grace: float = KILL_GRACE,
                 name: str = "payload") -> None:
        self.job = job
        self.name = name
        self.user = user
        self.env = env
        self.grace = grace
        self.guarded: Optional[GuardedProcess] = None
        self.kill_reason = ""
        self.started = threading.Event()
        self.communicator: Optional[Communicator] = None  # set when the payload may receive the user's proxy (getProxy)
        self.state_masks: List[str] = []  # the pilot's own state, masked from the payload (control.payload)
        self._lock = threading.Lock()

    @property
    def proc(self) -> Any:
        """The guard's Popen (None before the start)."""
        return self.guarded.proc if self.guarded is not None else None

    @property
    def tracker(self) -> Any:
        return self.guarded.tracker if self.guarded is not None else None

    @property
    def stdout_path(self) -> str:
        if self.name != "payload":
            return os.path.join(self.job.workdir, f"{self.name}.stdout")
        return os.path.join(self.job.workdir, config.Payload.payloadstdout)

    @property
    def stderr_path(self) -> str:
        if self.name != "payload":
            return os.path.join(self.job.workdir, f"{self.name}.stderr")
        return os.path.join(self.job.workdir, config.Payload.payloadstderr)

    @property
    def status_path(self) -> str:
        return os.path.join(self.job.workdir, GUARD_STATUS if self.name == "payload" else f"{self.name}_guard.json")

    def command(self) -> str:
        """The payload's shell line, built by the experiment plug-in, in a container when one is asked for.

        A user analysis job first gets its owner's proxy from the server (getProxy, through
        ``self.communicator`` when the caller set one) in its work dir. The container plug-in then
        wraps the line when the queue (``container_type``) or the job (an image) asks for a container.
        """
        communicator = getattr(self, "communicator", None)
        if self.job.is_analysis and communicator is not None and config.Pilot.get("payload_proxy_from_server", True):
            role = str(config.Pilot.get("payload_proxy_role", "") or getattr(self.user, "experiment", "") or "atlas")
            path, diag = fetch_payload_proxy(communicator, self.job.workdir, role)
            if path:
                logger.info("job %s: user proxy stored in the work dir", self.job.jobid)
            else:
                logger.warning("job %s: no user proxy: %s", self.job.jobid, diag)
        line = self.user.module("common").get_payload_command(self.job)
        container = self.user.module("container")
        if container.do_use_container(job=self.job):
            wrapped = container.wrapper(line, job=self.job, workdir=self.job.workdir, env=self.payload_environment())
            if not wrapped:
                raise PilotException("the container plug-in returned no command",
                                     code=ErrorCodes.SINGULARITYGENERALFAILURE)
            line = wrapped
        return line

    def keeps_pilot_proxy(self) -> bool:
        """True when the payload keeps the pilot's proxy: a production job reading its inputs remotely.

        The experiment's ``common.payload_needs_pilot_proxy(job)`` decides when it is defined.
        """
        decide = getattr(self.user.module("common"), "payload_needs_pilot_proxy", None)
        if callable(decide):
            return bool(decide(self.job))
        return not self.job.is_analysis and any(spec.status == "remote_io" for spec in self.job.indata)

    def payload_environment(self) -> dict:
        """The environment of the payload, without the pilot's credentials.

        The pilot's proxy and token variables are removed; an analysis job's own proxy (in its work
        dir) becomes ``X509_USER_PROXY``; the pilot's proxy stays when :meth:`keeps_pilot_proxy`.
        """
        env = dict(self.env if self.env is not None else os.environ)
        env.update({"PandaID": self.job.jobid, "PanDA_TaskID": self.job.taskid,
                    "PILOT_JOB_WORKDIR": self.job.workdir,
                    "ATHENA_PROC_NUMBER": str(self.job.corecount), "ATHENA_CORE_NUMBER": str(self.job.corecount)})
        return isolate_credentials(env, self.job.workdir, keep_pilot_proxy=self.keeps_pilot_proxy(),
                                   pilot_environ=self.env if self.env is not None else None)

    def credential_masks(self, payload_env: dict) -> List[str]:
        """The pilot's credential paths the guard hides from the payload ([] when isolation is off).

        Derived from the environment :meth:`payload_environment` built, so the two always agree: the
        job's own proxy and a proxy that environment points at (the kept pilot proxy) stay visible.
        The pilot's own environment is searched, and ``self.env`` too when the caller gave one.
        """
        if credential_isolation_mode() == "off":
            return []
        environs = [dict(os.environ)] + ([self.env] if self.env is not None else [])
        masks = masked_credential_paths(payload_env, self.job.workdir, environs)
        # the pilot's own state (outbox, recovery records, ledger, log, caches): set by control.payload
        return masks + [path for path in self.state_masks if path not in masks]

    def guard_spec(self, line: str) -> GuardSpec:
        """What the guard runs and with which isolation (the same for every payload path)."""
        env = self.payload_environment()
        nice, ionice = job_priority(self.job)
        return GuardSpec(line=line, workdir=self.job.workdir, stdout=self.stdout_path, stderr=self.stderr_path,
                         status_path=self.status_path, env=env, grace=self.grace, masks=self.credential_masks(env),
                         credential_isolation=credential_isolation_mode(),
                         process_isolation=process_isolation_mode(), payload_user=payload_user_ids(),
                         label=f"job {self.job.jobid}: {self.name}", nice=nice, ionice=ionice)

    def start(self, line: str, record_pid: bool = True) -> int:
        """Start the payload under the guard; return the guard's PID."""
        spec = self.guard_spec(line)
        logger.info("job %s: payload command: %s", self.job.jobid, line)
        with self._lock:
            if self.kill_reason:
                raise PilotException(f"payload not started: {self.kill_reason}",
                                     code=ErrorCodes.PAYLOADEXECUTIONFAILURE)
            self.guarded = GuardedProcess(spec)
            pid = self.guarded.start()
        logger.debug("job %s: payload started under the guard, PID %d, cwd %s, isolation %s/%s, stdout %s",
                     self.job.jobid, pid, self.job.workdir, spec.credential_isolation, spec.process_isolation,
                     self.stdout_path)
        if record_pid:
            self.job.pid = pid
            self.job.pgrp = pid
        self.started.set()
        return pid

    def wait(self) -> dict:
        """Block until the payload tree is gone; return the guard's status record.

        A guard that was killed (only possible where the payload shares its PID namespace) leaves no
        record: the payload's remains are stopped and the job fails with 1310
        (PAYLOADEXECUTIONEXCEPTION), not with the signal the guard got.
        """
        assert self.guarded is not None
        status = self.guarded.wait()
        if status.get("guard_lost"):
            diag = (f"the payload guard was killed (exit {status.get('exit_code')}, signal {status.get('signal')}); "
                    "the payload's processes were stopped")
            logger.error("job %s: %s", self.job.jobid, diag)
            if self.name == "payload" and not self.kill_reason:
                self.job.fail(ErrorCodes.PAYLOADEXECUTIONEXCEPTION, diag)
        self._judge_isolation(status.get("credentials"))
        self._judge_process_isolation(status.get("isolation"))
        logger.debug("job %s: payload guard PID %d ended: %s", self.job.jobid, self.guarded.pid,
                     {k: v for k, v in status.items() if k != "credentials"})
        return status

    def _judge_process_isolation(self, record: Any) -> None:
        """Log the payload's process isolation; fail the job when ``process_isolation = required`` was not met."""
        if not isinstance(record, dict):
            return
        jobid, error = self.job.jobid, str(record.get("error", ""))
        if record.get("pidns"):
            logger.info("job %s: %s ran in its own PID namespace (%s)%s%s", jobid, self.name, record.get("kind"),
                        f" as uid {record['user'][0]}" if record.get("user") else "",
                        f" in cgroup {record['cgroup']}" if record.get("cgroup") else "")
        if error and record.get("mode") == "required" and not record.get("pidns"):
            self.job.fail(ErrorCodes.SETUPFAILURE, f"process isolation required but failed: {error}"[:250])
        elif error:
            logger.warning("job %s: %s: weaker process isolation: %s", jobid, self.name, error)

    def _judge_isolation(self, record: Any) -> None:
        """Log what the guard did with the pilot's credentials; fail the job when required masking failed.

        Code 1110 (SETUPFAILURE): the payload's environment could not be set up as the site requires,
        so the payload was not started; nothing is wrong with the payload itself.
        """
        if not isinstance(record, dict):
            return
        jobid, mode, error = self.job.jobid, record.get("mode", ""), record.get("error", "")
        if record.get("masked"):
            logger.info("job %s: %s: pilot credentials masked: %s", jobid, self.name,
                        ", ".join(record.get("paths", [])) or "(none left)")
        elif mode == "off":
            logger.info("job %s: %s: credential isolation is off", jobid, self.name)
        elif error and mode == "required":
            logger.error("job %s: %s not started: the pilot's credentials could not be masked: %s", jobid,
                         self.name, error)
            self.job.fail(ErrorCodes.SETUPFAILURE, f"credential isolation required but failed: {error}"[:250])
        elif error:
            logger.warning("job %s: the %s can read the pilot's credentials (masking failed: %s)", jobid,
                           self.name, error)
        else:
            logger.info("job %s: %s: no pilot credential files to mask", jobid, self.name)

    def cpu_seconds(self) -> Optional[float]:
        """CPU seconds of the payload tree so far (None before the start)."""
        return self.guarded.cpu_seconds() if self.guarded is not None else None

    def guard_pids(self) -> List[int]:
        """The payload guard's own processes (the guard, and the init of the payload's PID namespace)."""
        return self.guarded.guard_pids() if self.guarded is not None else []

    def kill(self, reason: str = "") -> None:
        """Stop the payload tree: the guard forwards SIGTERM, waits, then SIGKILLs the tree."""
        with self._lock:
            self.kill_reason = self.kill_reason or reason or "killed by the pilot"
            guarded = self.guarded
        if guarded is not None:
            guarded.kill(self.kill_reason)


def read_job_report(job: JobData) -> None:
    """Read jobReport.json: metaData text, exeErrorCode/exeErrorDiag and event counts."""
    path = os.path.join(job.workdir, config.Payload.jobreport)
    if not os.path.lexists(path):
        return
    try:  # the payload's file: a checked regular file in its work dir, of bounded size
        from pilot.util.safefile import read_checked

        text = read_checked(path, job.workdir).decode(errors="replace")
        report = json.loads(text)
    except (OSError, ValueError, PilotException) as exc:
        logger.warning("job %s: unreadable %s: %s", job.jobid, path, exc)
        return
    job.metadata = text
    if not isinstance(report, dict):
        return
    try:
        job.exeerrorcode = int(report.get("exitCode", 0) or 0)
    except (TypeError, ValueError):
        job.exeerrorcode = 0
    msg = str(report.get("exitMsg", "") or "")
    job.exeerrordiag = "" if msg == "OK" else msg[:256]
    nevents = report.get("nEvents") or report.get("resource", {}).get("nEvents") if isinstance(
        report.get("resource", {}), dict) else report.get("nEvents")
    if isinstance(nevents, int):
        job.nevents = nevents
