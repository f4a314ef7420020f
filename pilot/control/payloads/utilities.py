"""Utilities around the payload: the job's preprocess, coprocess and postprocess (compat §9 orders 1, 4, 6).

The pre- and postprocess run to completion in the job dir (a failure is 1356/1357 unless the
plug-in marks it ignorable; exit codes 160-162 end an HPO loop and are not failures). The coprocess
runs beside the payload and is stopped when the payload ends. The job defines all three, so each
runs under a payload guard of its own with the payload's isolation.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.info.jobdata import JobData
from pilot.util.filehandling import tail

if TYPE_CHECKING:
    from pilot.control.context import PluginLoader
    from pilot.control.payloads.generic import PayloadExecutor

logger = logging.getLogger(__name__)

UTILITY_BEFORE_PAYLOAD = 1
UTILITY_AFTER_PAYLOAD_STARTED2 = 4
UTILITY_AFTER_PAYLOAD_FINISHED2 = 6
HPO_LOOP_END_CODES = (160, 161, 162)
#: seconds a pre- or postprocess may run
UTILITY_TIMEOUT = 3600
#: seconds between looks at the job's abort event while a pre- or postprocess runs
STOP_CHECK = 0.25


def utility_line(user: PluginLoader, order: int, job: JobData) -> tuple:
    """(label, shell line, ignore_failure) of the utility at ``order``, or ('', '', True) for none."""
    common = user.module("common")
    spec = common.get_utility_commands(order=order, job=job) or {}
    label = spec.get("label") or ""
    if not label:
        return "", "", True
    line = common.get_utility_command_setup(label, job) or ""
    return label, line, bool(spec.get("ignore_failure", False))


def run_blocking(user: PluginLoader, order: int, job: JobData, env: Optional[dict] = None,
                 state_masks: Iterable[str] = (), stop_event: Optional[threading.Event] = None) -> bool:
    """Run the pre- or postprocess under its own payload guard; False (and the job's error) when it failed.

    The job defines these commands, so they get the payload's isolation (credential masks, PID
    namespace, payload uid, the pilot's state masked) like the payload and the coprocess; their
    output goes to ``<label>.stdout``/``<label>.stderr`` in the work dir. It is stopped after
    ``UTILITY_TIMEOUT`` seconds or when ``stop_event`` (the job's abort) is set.
    """
    label, line, ignore = utility_line(user, order, job)
    if not line:
        return True
    logger.info("job %s: running the %s: %s", job.jobid, label, line)
    executor = _executor(user, job, env, label, state_masks)
    codes = list(job.errors.codes)
    try:
        executor.start(line, record_pid=False)
        stopped = _wait(executor, label, stop_event)
        exit_code = int(executor.wait().get("exit_code", -1))
    except (OSError, PilotException) as exc:
        exit_code, diag, stopped = -1, f"cannot start it: {exc}", ""
    else:
        diag = stopped or _last_line(executor.stderr_path, job.workdir) or \
            _last_line(executor.stdout_path, job.workdir)
    if list(job.errors.codes) != codes:  # refused isolation (1110) or the job's abort: already failed
        return False
    if (exit_code == 0 and not stopped) or exit_code in HPO_LOOP_END_CODES or ignore:
        if exit_code:
            logger.info("job %s: %s ended with %d (not a failure)", job.jobid, label, exit_code)
        return True
    code = ErrorCodes.PREPROCESSFAILURE if order == UTILITY_BEFORE_PAYLOAD else ErrorCodes.POSTPROCESSFAILURE
    job.fail(code, f"{label} failed with exit code {exit_code}: {diag[:200]}")
    return False


def _wait(executor: PayloadExecutor, label: str, stop_event: Optional[threading.Event]) -> str:
    """Wait for a started utility until it ends, times out or ``stop_event`` is set; why it was stopped ('' if not)."""
    deadline = time.monotonic() + UTILITY_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            reason = f"timed out after {UTILITY_TIMEOUT} s"
            break
        if stop_event is not None and stop_event.is_set():
            reason = "stopped: the job was aborted"
            break
        try:  # the guard's exit, in slices that look at the stop event
            executor.proc.wait(remaining if stop_event is None else min(STOP_CHECK, remaining))
            return ""
        except subprocess.TimeoutExpired:
            continue
    executor.kill(f"the {label} {reason}")
    return reason


def _executor(user: PluginLoader, job: JobData, env: Optional[dict], label: str, state_masks: Iterable[str]) -> Any:
    """A payload executor for a utility: the payload's guard, isolation and masks, its own output files."""
    from pilot.control.payloads.generic import PayloadExecutor

    executor = PayloadExecutor(job, user, env=env, grace=5.0, name=label)
    executor.state_masks = list(state_masks)
    return executor


def _last_line(path: str, workdir: str) -> str:
    """The last line of an output file the utility wrote (checked, its last 4 KiB)."""
    lines = [text for text in tail(path, 4096, workdir).splitlines() if text.strip()]
    return lines[-1].strip() if lines else ""


class Coprocess:
    """The job's coprocess, run beside the payload under its own guard."""

    def __init__(self, user: PluginLoader, job: JobData, env: Optional[dict] = None,
                 state_masks: Iterable[str] = ()) -> None:
        self.label, self.line, _ = utility_line(user, UTILITY_AFTER_PAYLOAD_STARTED2, job)
        self.executor: Optional[Any] = None
        if self.line:
            self.executor = _executor(user, job, env, self.label, state_masks)

    def start(self) -> None:
        if self.executor is not None:
            logger.info("starting the %s: %s", self.label, self.line)
            self.executor.start(self.line, record_pid=False)

    def stop(self) -> None:
        if self.executor is not None and self.executor.proc is not None:
            self.executor.kill(reason=f"the payload ended; stopping the {self.label}")
            self.executor.wait()
