"""Data control: stage-in before the payload, stage-out of outputs and the log after it.

Threads: ``stage_in`` (validated_jobs -> finished_data_in | failed_data_in) and ``stage_out``
(finished_payloads, failed_payloads, failed_data_in -> finished_data_out | failed_data_out). Both go
through the Data API (:mod:`pilot.api.data`), the same code Harvester imports.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.control.context import PilotContext
from pilot.info.jobdata import JobData, JobPhase
from pilot.util import constants as c
from pilot.util.auxiliary import random_uuid
from pilot.util.safefile import UnsafeFile, open_checked

logger = logging.getLogger(__name__)

INPUT_ACTIVITIES = ["pr", "default"]
OUTPUT_ACTIVITIES = ["pw", "w", "default"]
LOG_ACTIVITIES = ["pl", "pw", "w", "default"]
#: seconds the log tarball may take before the job fails with 1376
LOG_CREATION_TIMEOUT = 1800.0


def _client(ctx: PilotContext, job: JobData, client_class: Any, stop: Any = None, traces: Any = None) -> Any:
    """A Data API client for one job: its trace report, the pilot's HTTP client and stop event.

    Stage-in may be cancelled by an abort; stage-out is not, so the log of an aborted job still leaves.
    ``traces`` (a TraceBatch) collects the trace records of several transfers for one POST.
    """
    from pilot.util.tracereport import job_trace

    return client_class(ctx.infosys, logger=logger, trace_report=job_trace(job, ctx.args), http=ctx.http,
                        stop_event=stop, metrics=getattr(ctx, "metrics", None), trace_batch=traces)


def job_traces(ctx: PilotContext, job: JobData) -> Any:
    """The job's trace batch: its stage-in and stage-out traces leave together, in one request.

    Rucio uses a ``get`` trace to note when a replica was read; an hour's delay changes nothing
    there, and one request per job instead of one per transfer keeps the pilot's load on the
    trace server (and its own cost) at one POST per job.
    """
    from pilot.util.tracereport import TraceBatch

    with ctx.lock:
        batch = ctx.trace_batches.get(job.jobid)
        if batch is None:
            batch = ctx.trace_batches[job.jobid] = TraceBatch(http=ctx.http)
    return batch


def send_job_traces(ctx: PilotContext, job: JobData) -> None:
    """Send (and forget) the job's collected traces; errors are logged, never raised."""
    with ctx.lock:
        batch = ctx.trace_batches.pop(job.jobid, None)
    if batch is not None:
        batch.flush()


def stage_in(ctx: PilotContext) -> None:
    """validated_jobs -> finished_data_in | failed_data_in."""
    from pilot.api.data import StageInClient

    while True:
        job = begin_stage_in(ctx)
        if job is None:
            return
        ok = not ctx.events.abort_job.is_set() and _stage_in_job(ctx, job, StageInClient)
        end_stage_in(ctx, job, ok and not ctx.events.abort_job.is_set())


def begin_stage_in(ctx: PilotContext) -> Optional[JobData]:
    """The next validated job, moved into stage-in (phase, start time, heartbeat); None once the pilot is done."""
    got = ctx.take(("validated_jobs",))
    if got is None:
        return None
    job = got[1]
    job.advance(JobPhase.STAGEIN)
    job.timing[c.PILOT_PRE_STAGEIN] = time.time()
    ctx.reporter.heartbeat(job)  # stage-in start
    return job


def end_stage_in(ctx: PilotContext, job: JobData, ok: bool) -> None:
    """Stamp the end of stage-in and pass the job on to finished_data_in (``ok``) or failed_data_in."""
    job.timing[c.PILOT_POST_STAGEIN] = time.time()
    if ok:
        ctx.queues.put("finished_data_in", job)
    else:
        job.timing["stagein_failed"] = time.time()
        ctx.queues.put("failed_data_in", job)


def _stage_in_job(ctx: PilotContext, job: JobData, client_class: Any) -> bool:
    files = [f for f in job.indata if f.status not in ("transferred", "remote_io", "no_transfer")]
    if not files:
        return True
    try:
        client = _client(ctx, job, client_class, stop=ctx.events.abort_job, traces=job_traces(ctx, job))
        activities = (["es_events_read"] if job.is_eventservicemerge else []) + INPUT_ACTIVITIES
        client.transfer(files, activity=activities, workdir=job.workdir, cwd=job.workdir, job=job,
                        input_dir=ctx.args.input_dir, use_vp=job.use_vp,
                        communicator=ctx.communicator)  # object stores get their keys through getKeyPair
    except PilotException as exc:
        job.fail(exc.get_error_code(), exc.get_detail())
        return False
    except Exception as exc:  # a Data API bug must still end in a coded, reported failure
        logger.exception("stage-in of job %s raised", job.jobid)
        job.fail(ErrorCodes.STAGEINFAILED, f"stage-in failed: {exc}")
        return False
    from pilot.api.directaccess import count_inputs

    count_inputs(job, getattr(ctx.infosys, "queuedata", None))
    missing = [f.lfn for f in files if not f.is_transferred]
    if missing:
        code = next((f.status_code for f in files if f.status_code), ErrorCodes.STAGEINFAILED)
        job.fail(code, f"input file(s) not transferred: {', '.join(missing)}")
        return False
    return True


def stage_out(ctx: PilotContext) -> None:
    """Stage out outputs (successful payloads only) and the log (always)."""
    from pilot.api.data import StageOutClient

    names = ("finished_payloads", "failed_payloads", "failed_data_in")
    while True:
        got = ctx.take(names)
        if got is None:
            return
        name, job = got
        if job.phase in (JobPhase.STAGEIN, JobPhase.PAYLOAD):
            job.advance(JobPhase.STAGEOUT)
        ran_payload = name in ("finished_payloads", "failed_payloads")
        if ran_payload and ctx.recovery is not None:
            ctx.recovery.save(job)
        job.timing[c.PILOT_PRE_STAGEOUT] = time.time()
        ok = True
        traces = job_traces(ctx, job)  # with the inputs' traces, they leave in one request after the log
        if name == "finished_payloads" and not job.errors and not job.is_eventservice:  # ES: outputs left per range
            ok = _stage_out_outputs(ctx, job, StageOutClient, traces=traces)
        elif name == "failed_payloads" and job.errors.first()[0] == ErrorCodes.REACHEDMAXTIME:
            _stage_out_outputs(ctx, job, StageOutClient, partial=True, traces=traces)  # keep what it produced
        ok = _stage_out_log(ctx, job, StageOutClient, traces=traces) and ok
        if ran_payload and ctx.recovery is not None:
            ctx.recovery.save(job)  # what is on storage now: a recovering pilot does not copy it again
        send_job_traces(ctx, job)
        job.timing[c.PILOT_POST_STAGEOUT] = time.time()
        if not ok and ran_payload and _leave_for_recovery(ctx, job):
            continue
        ctx.queues.put("finished_data_out" if ok and not job.errors else "failed_data_out", job)


def log_for_failed_job(ctx: PilotContext, job: JobData) -> bool:
    """Make a job that failed before stage-in (definition, validation) ready for its log; False if it cannot be.

    Every job gets a log tarball whatever moment it failed at: the job's work dir is made when the
    failure came before it, so the tarball (of an empty work dir, if nothing else) leaves like any other
    log. Not when the job has no log file or its name is not a plain file name, or when the job id is
    unusable: such a job goes to its final update without one.
    """
    from pilot.info.jobdata import job_workdir
    from pilot.util.filehandling import mkdirs, safe_join

    if not job.logdata or not job.jobid or not str(job.jobid).isdigit():
        return False
    try:
        safe_join(ctx.mainworkdir, job.logdata[0].lfn)
        if "/" in job.logdata[0].lfn:
            return False
        if not job.workdir:
            job.workdir = job_workdir(ctx.mainworkdir, job.jobid)
            mkdirs(job.workdir)
        for spec in job.indata + job.outdata + job.logdata:
            spec.workdir = spec.workdir or job.workdir
    except PilotException as exc:
        logger.warning("job %s: no log tarball for this job: %s", job.jobid, exc.diag)
        return False
    return os.path.isdir(job.workdir)


def hold_job(ctx: PilotContext, job: JobData) -> None:
    """Report a job ``holding`` (its outputs wait in the recovery area) and let it go from this pilot."""
    logger.warning("job %s: stage-out failed (%s); the job is holding for recovery by a later pilot",
                   job.jobid, job.errors.first()[1])
    ctx.reporter.heartbeat(job, state="holding")
    ctx.job_left(job)


def _leave_for_recovery(ctx: PilotContext, job: JobData) -> bool:
    """After a transient stage-out failure: report the job holding and leave it to a later pilot."""
    from pilot.control.recovery import MAX_RECOVERY_ATTEMPTS, is_transient_stageout_failure

    if ctx.recovery is None or not is_transient_stageout_failure(job):
        return False
    if job.recovery_attempts >= MAX_RECOVERY_ATTEMPTS:
        logger.warning("job %s: stage-out failed again after %d recoveries: failing it", job.jobid,
                       job.recovery_attempts)
        return False
    if not ctx.recovery.save(job):  # a full disk: no record, so no later pilot could finish it
        return False
    hold_job(ctx, job)
    return True


def _stage_out_outputs(ctx: PilotContext, job: JobData, client_class: Any, partial: bool = False,
                       traces: Any = None) -> bool:
    """Stage out the outputs; ``partial``: those that exist (a job stopped by its time limit)."""
    files = []
    for spec in job.outdata:
        if spec.is_transferred:  # a recovered job: already on storage
            continue
        path = os.path.join(job.workdir, spec.lfn)
        if not os.path.lexists(path):
            if partial:
                continue
            if spec.lfn in (job.allownooutput or "").split(","):
                logger.info("job %s: output %s not produced (allowed)", job.jobid, spec.lfn)
                spec.status = "no_transfer"
                continue
            job.fail(ErrorCodes.MISSINGOUTPUTFILE, f"output file {spec.lfn} was not produced")
            return False
        try:  # what the payload left is checked before any tool reads it (size and checksum: the Data API)
            open_checked(path, job.workdir).close()
        except UnsafeFile as exc:
            logger.warning("job %s: output %s refused: %s", job.jobid, spec.lfn, exc.diag)
            job.fail(exc.get_error_code(), f"output {exc.diag}")
            return False
        if not spec.guid:
            spec.guid = random_uuid()
        files.append(spec)
    if not files:
        return True
    return _transfer_out(ctx, job, files, OUTPUT_ACTIVITIES, client_class, traces)


def allow_altstageout(ctx: PilotContext, job: JobData) -> bool:
    """Whether a failed output may go to an alternative storage: the queue's ``allow_altstageout`` decides
    when it says anything, else the job's ``altStageOut`` (on/force; off, no or empty: not allowed).

    Pilot 3 takes any non-empty ``altStageOut`` as on, 'off' included; that is a bug not followed here.
    """
    queuedata = getattr(ctx.infosys, "queuedata", None)
    value = (getattr(queuedata, "params", None) or {}).get("allow_altstageout") if queuedata is not None else None
    if value is None or value == "":
        value = job.altstageout
    if isinstance(value, str):
        return value.strip().lower() in ("on", "force", "true", "yes", "1")
    return bool(value)


def _transfer_out_once(ctx: PilotContext, job: JobData, files: list, activities: list, client_class: Any,
                       traces: Any = None) -> Optional[tuple]:
    """One stage-out of ``files``: None, or (code, diag, may retry) of the error the Data API raised."""
    try:
        client = _client(ctx, job, client_class, traces=traces)
        if allow_altstageout(ctx, job):  # primary and alternative storages by Pilot 2's rules
            client.prepare_destinations(files, activities, alt_exclude=[n for n in (job.nucleus,) if n and n != "NULL"])
        client.transfer(files, activity=activities, workdir=job.workdir, cwd=job.workdir, job=job,
                        output_dir=ctx.args.output_dir, communicator=ctx.communicator)
    except PilotException as exc:
        return exc.get_error_code(), exc.get_detail(), True
    except Exception as exc:  # a Data API bug: never retried
        logger.exception("stage-out of job %s raised", job.jobid)
        return ErrorCodes.STAGEOUTFAILED, f"stage-out failed: {exc}", False
    return None


def _transfer_out(ctx: PilotContext, job: JobData, files: list, activities: list, client_class: Any,
                  traces: Any = None) -> bool:
    """Stage out ``files``; after a transient failure, the long-break retries (:mod:`.stageoutpause`)."""
    from pilot.control.recovery import TRANSIENT_STAGEOUT_CODES
    from pilot.control.stageoutpause import long_pause, pause_plan

    waits = pause_plan(ctx, job)
    pending = list(files)
    for attempt in range(len(waits) + 1):
        error = _transfer_out_once(ctx, job, pending, activities, client_class, traces)
        failed = [spec for spec in pending if not spec.is_transferred]
        if error is None and not failed:
            break
        codes = {error[0]} if error is not None else {spec.status_code or ErrorCodes.STAGEOUTFAILED for spec in failed}
        if attempt == len(waits) or not codes <= TRANSIENT_STAGEOUT_CODES or (error is not None and not error[2]):
            break
        if not long_pause(ctx, job, waits[attempt], attempt + 1):
            break
        for spec in failed:  # tried again from the start, on whatever storage comes first again
            spec.status, spec.status_code = "", 0
        pending = failed
    if error is not None:
        job.fail(error[0], error[1])
        return False
    ok = True
    alt = [spec.lfn for spec in files if spec.is_transferred and spec.is_altstaged]
    if alt:
        logger.warning("job %s: alternative stage-out for %s", job.jobid, alt)
    for spec in files:
        if spec.is_transferred:
            job.outputs_xml[spec.lfn] = {"guid": spec.guid, "fsize": spec.filesize,
                                         "adler32": spec.checksum.get("adler32", ""), "surl": spec.turl or spec.surl}
        else:
            ok = False
            job.fail(spec.status_code or ErrorCodes.STAGEOUTFAILED, f"{spec.lfn} not transferred")
    return ok


def _stage_out_log(ctx: PilotContext, job: JobData, client_class: Any, traces: Any = None) -> bool:
    if not job.logdata or not job.workdir or not os.path.isdir(job.workdir):
        return True
    spec = job.logdata[0]
    if spec.is_transferred:
        return True
    job.timing[c.PILOT_PRE_LOG_TAR] = time.time()
    try:
        ctx.user.module("common").remove_redundant_files(
            job.workdir, outputfiles=[f.lfn for f in job.outdata],
            islooping=job.errors.first()[0] == ErrorCodes.LOOPINGJOB, debugmode=job.debug)
    except Exception as exc:  # trimming the log is an optimisation: never fail the job over it
        logger.warning("job %s: removing redundant files failed: %s", job.jobid, exc)
    try:
        create_log_tarball(job, ctx.args.queue)
    except PilotException as exc:
        job.fail(exc.get_error_code(), exc.get_detail())
        return False
    except OSError as exc:
        job.fail(ErrorCodes.LOGFILECREATIONFAILURE, f"cannot create the log tarball: {exc}")
        return False
    job.timing[c.PILOT_POST_LOG_TAR] = time.time()
    if not spec.guid:
        spec.guid = random_uuid()
    return _transfer_out(ctx, job, [spec], LOG_ACTIVITIES, client_class, traces)


def create_log_tarball(job: JobData, queue: str, timeout: float = LOG_CREATION_TIMEOUT) -> str:
    """Pack the job's work dir (without inputs, outputs and the tarball) as the job's log file.

    Members are stored under ``tarball_PandaJob_<PandaID>_<queue>/``; the pilot builds the archive itself
    from the checked list of the work dir (:mod:`pilot.util.archive`): symlinks are followed only to
    regular files inside the work dir, FIFOs, devices, sockets and links out are left out with a log line,
    and the tarball is a new file (``O_EXCL|O_NOFOLLOW``) renamed over ``<logFile>``, so nothing the
    payload placed under that name (or ``<logFile>.part``) is written through. An empty work dir still
    gives a tarball. Past ``timeout`` seconds the job fails with 1376 LOGCREATIONTIMEOUT.
    """
    from pilot.util.archive import create_tarball

    spec = job.logdata[0]
    path = os.path.join(job.workdir, spec.lfn)
    skip = {f.lfn for f in job.indata} | {f.lfn for f in job.outdata} | {spec.lfn}
    top = f"tarball_PandaJob_{job.jobid}_{queue}"
    for lfn in {f.lfn for f in job.indata}:
        candidate = os.path.join(job.workdir, lfn)
        if os.path.islink(candidate) or os.path.isfile(candidate):
            try:
                os.unlink(candidate)
            except OSError:
                pass
    report = create_tarball(job.workdir, path, top, lambda name: name in skip or name.endswith(".part"), timeout)
    logger.info("job %s: log tarball %s: %d member(s), %d bytes read, %d left out", job.jobid, spec.lfn,
                report.members, report.bytes, len(report.skipped))
    return path
