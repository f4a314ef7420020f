"""Utilities around the payload: the job's preprocess, coprocess and postprocess (compat §9 orders 1, 4, 6).

The pre- and postprocess run to completion in the job dir (a failure is 1356/1357 unless the
plug-in marks it ignorable; exit codes 160-162 end an HPO loop and are not failures). The coprocess
runs beside the payload under its own payload guard and is stopped when the payload ends.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.info.jobdata import JobData
from pilot.util.processes import run_command

logger = logging.getLogger(__name__)

UTILITY_BEFORE_PAYLOAD = 1
UTILITY_AFTER_PAYLOAD_STARTED2 = 4
UTILITY_AFTER_PAYLOAD_FINISHED2 = 6
HPO_LOOP_END_CODES = (160, 161, 162)
#: seconds a pre- or postprocess may run
UTILITY_TIMEOUT = 3600


def utility_line(user: Any, order: int, job: JobData) -> tuple:
    """(label, shell line, ignore_failure) of the utility at ``order``, or ('', '', True) for none."""
    common = user.module("common")
    spec = common.get_utility_commands(order=order, job=job) or {}
    label = spec.get("label") or ""
    if not label:
        return "", "", True
    line = common.get_utility_command_setup(label, job) or ""
    return label, line, bool(spec.get("ignore_failure", False))


def run_blocking(user: Any, order: int, job: JobData, env: Optional[dict] = None) -> bool:
    """Run the pre- or postprocess; False (and the job's error) when it failed."""
    label, line, ignore = utility_line(user, order, job)
    if not line:
        return True
    logger.info("job %s: running the %s: %s", job.jobid, label, line)
    result = run_command(line, shell=True, cwd=job.workdir, env=env, timeout=UTILITY_TIMEOUT)
    if result.exit_code == 0 or result.exit_code in HPO_LOOP_END_CODES or ignore:
        if result.exit_code:
            logger.info("job %s: %s ended with %d (not a failure)", job.jobid, label, result.exit_code)
        return True
    code = ErrorCodes.PREPROCESSFAILURE if order == UTILITY_BEFORE_PAYLOAD else ErrorCodes.POSTPROCESSFAILURE
    tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
    job.fail(code, f"{label} failed with exit code {result.exit_code}: {tail[0][:200]}")
    return False


class Coprocess:
    """The job's coprocess, run beside the payload under its own guard."""

    def __init__(self, user: Any, job: JobData, env: Optional[dict] = None) -> None:
        from pilot.control.payloads.generic import PayloadExecutor

        self.label, self.line, _ = utility_line(user, UTILITY_AFTER_PAYLOAD_STARTED2, job)
        self.executor: Optional[Any] = None
        if self.line:
            self.executor = PayloadExecutor(job, user, env=env, grace=5.0, name=self.label)

    def start(self) -> None:
        if self.executor is not None:
            logger.info("starting the %s: %s", self.label, self.line)
            self.executor.start(self.line, record_pid=False)

    def stop(self) -> None:
        if self.executor is not None and self.executor.proc is not None:
            self.executor.kill(reason=f"the payload ended; stopping the {self.label}")
            self.executor.wait()
