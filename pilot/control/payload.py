"""Payload control: run each staged-in job's payload and judge how it ended.

Thread ``execute_payloads``: finished_data_in -> finished_payloads | failed_payloads. The job
monitor reads ``ctx.executors`` to measure and, when needed, kill the running payload.
"""

from __future__ import annotations

import logging
import time

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.control.context import PilotContext
from pilot.control.payloads import utilities
from pilot.control.payloads.selection import executor_for
from pilot.control.payloads.generic import read_job_report
from pilot.info.jobdata import JobData, JobPhase
from pilot.util import constants as c

logger = logging.getLogger(__name__)


def execute_payloads(ctx: PilotContext) -> None:
    """finished_data_in -> run -> finished_payloads | failed_payloads."""
    while True:
        got = ctx.take(("finished_data_in",))
        if got is None:
            return
        job = got[1]
        ok = run_payload(ctx, job)
        ctx.queues.put("finished_payloads" if ok else "failed_payloads", job)


def run_payload(ctx: PilotContext, job: JobData) -> bool:
    """Run the payload of ``job`` (with its pre-, co- and postprocess); True when it succeeded."""
    job.advance(JobPhase.PAYLOAD)
    executor = executor_for(ctx, job)  # generic, event service or event-service merge
    layout = getattr(ctx.recovery, "layout", None)
    if layout is not None:  # the pilot's state is masked in the payload's mount namespace too
        executor.state_masks = layout.masks(ctx.mainworkdir)
    if getattr(ctx.args, "verify_payload_proxy", True):
        executor.communicator = ctx.communicator  # analysis jobs get the user's proxy through getProxy
    with ctx.lock:
        ctx.executors[job.jobid] = executor
    job.timing[c.PILOT_PRE_PAYLOAD] = time.time()
    coprocess = None
    requested_stop = False
    try:
        if ctx.events.abort_job.is_set():
            raise PilotException("the job was aborted before the payload started",
                                 code=ErrorCodes.PAYLOADEXECUTIONFAILURE)
        line = executor.command()
        env = executor.payload_environment()
        state_masks = getattr(executor, "state_masks", ())
        if utilities.run_blocking(ctx.user, utilities.UTILITY_BEFORE_PAYLOAD, job, env=env, state_masks=state_masks,
                                  stop_event=ctx.events.abort_job):
            executor.start(line)
            ctx.reporter.heartbeat(job)  # payload start
            coprocess = utilities.Coprocess(ctx.user, job, env=env, state_masks=state_masks)
            coprocess.start()
            status = executor.wait()
            _record_exit(job, status)
            requested_stop = _kill_request_honoured(job)
    except PilotException as exc:
        job.fail(exc.get_error_code(), exc.get_detail())
    except OSError as exc:
        job.fail(ErrorCodes.PAYLOADEXECUTIONEXCEPTION, f"cannot start the payload: {exc}")
    finally:
        if coprocess is not None:
            coprocess.stop()
        job.timing[c.PILOT_POST_PAYLOAD] = time.time()
        with ctx.lock:
            ctx.executors.pop(job.jobid, None)
    read_job_report(job)
    if job.exitcode is not None and not job.errors and not requested_stop:
        _diagnose(ctx, job)
    if job.exitcode == 0 and not job.errors:
        utilities.run_blocking(ctx.user, utilities.UTILITY_AFTER_PAYLOAD_FINISHED2, job,
                               env=executor.payload_environment(), state_masks=getattr(executor, "state_masks", ()),
                               stop_event=ctx.events.abort_job)
    return not job.errors


def _record_exit(job: JobData, status: dict) -> None:
    exit_code = int(status.get("exit_code", -1))
    job.exitcode = exit_code
    job.transexitcode = exit_code
    if status.get("cpu") is not None:
        job.cpuconsumptiontime = float(status["cpu"])
    if status.get("signal"):
        job.extra_metrics["payloadSignal"] = status["signal"]
    logger.info("job %s: payload exit code %s (signal %s), %.2f CPU s", job.jobid, exit_code,
                status.get("signal"), job.cpuconsumptiontime or 0.0)


def _kill_request_honoured(job: JobData) -> bool:
    """A payload stopped by a kill instruction (1363) is no error: the job goes on to stage-out and ends finished."""
    if ErrorCodes.KILLPAYLOAD not in job.errors.codes:
        return False
    job.errors.remove(ErrorCodes.KILLPAYLOAD)
    logger.info("job %s: the payload was stopped on request: not an error", job.jobid)
    job.exitcode = 0
    job.transexitcode = 0
    return True


def _diagnose(ctx: PilotContext, job: JobData) -> None:
    """Let the experiment plug-in turn the payload's exit into a pilot error code."""
    diagnose = ctx.user.module("diagnose")
    try:
        code = diagnose.interpret(job)
    except PilotException as exc:
        job.fail(exc.get_error_code(), exc.get_detail())
        return
    if code and not job.errors:
        job.fail(code, ErrorCodes.get_error_message(code))
    try:
        job.log_extracts = diagnose.get_log_extracts(job, "failed" if job.errors else "finished")
    except Exception as exc:  # extracts are a courtesy: never fail the job over them
        logger.warning("job %s: no log extracts: %s", job.jobid, exc)
