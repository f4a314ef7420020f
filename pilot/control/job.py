"""Job control: get a job, validate it, hand it to stage-in, and send its final update.

Threads (started by the workflow): ``retrieve`` (getJob loop, one job at a time, more while the
queue's timefloor allows), ``validate`` (jobs -> validated_jobs | failed_jobs) and
``queue_monitor`` (failed_jobs, finished_data_out, failed_data_out -> final update ->
completed_jobs).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import CommunicationFailure, PilotException
from pilot.control import preflight
from pilot.control.context import PilotContext
from pilot.info.jobdata import JobData, JobPhase, job_workdir
from pilot.info.queuedata import resource_name
from pilot.util import constants as c
from pilot.util.config import config
from pilot.util.filehandling import append_line, mkdirs, write_json_atomic
from pilot.util.https import failure_info
from pilot.util.parameters import resolve_job_label
from pilot.util.statefile import RejectedRecord, read_record, set_aside
from pilot.util.background import background_mode, mark_background
from pilot.util.workernode import disk_space_for_getjob

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- compat helpers
def get_fake_job(input: bool = True, inpt: Optional[bool] = None) -> dict:  # noqa: A002 (Pilot 2 name)
    """A small self-contained job definition for tests (``input``/``inpt``: with an input file)."""
    with_input = input if inpt is None else inpt
    jobid = str(int(time.time() * 1000) % 10 ** 9 + 1000)
    job = {
        "PandaID": jobid, "jobsetID": "NULL", "taskID": "1", "jobDefinitionID": "1", "attemptNr": "1",
        "transformation": "/bin/bash", "jobPars": "-c 'echo Hello from the fake job; ls -l'",
        "homepackage": "", "swRelease": "", "cmtConfig": "", "prodSourceLabel": "ptest",
        "coreCount": "1", "processingType": "pilot-test", "logFile": f"{jobid}.job.log.tgz",
        "logGUID": "", "scopeLog": "tests", "outFiles": f"{jobid}.job.log.tgz", "scopeOut": "tests",
        "realDatasets": "fake.log", "ddmEndPointOut": "", "destinationDblock": "fake.log",
        "inFiles": "", "GUID": "", "fsize": "", "checksum": "", "scopeIn": "", "realDatasetsIn": "",
        "prodDBlockToken": "", "ddmEndPointIn": "",
    }
    if with_input:
        job.update({"inFiles": "fake_input.txt", "GUID": "00000000-0000-0000-0000-000000000001",
                    "fsize": "12", "checksum": "ad:1c2a03a4", "scopeIn": "tests",
                    "realDatasetsIn": "fake.input", "prodDBlockToken": "NULL", "ddmEndPointIn": ""})
    return job


def create_job(definition: dict, queue: str = "") -> JobData:
    """Build a JobData from a getJob field set (Pilot 2 name)."""
    job = JobData.from_definition(definition)
    job.computingsite = job.computingsite or queue
    return job


def getjob_fields(ctx: PilotContext, node: Any, jobs_done: int, last_taskid: str = "") -> dict:
    """The getJob request of compat §4.3."""
    args = ctx.args
    queuedata = ctx.get_queuedata()
    resource = resource_name(queuedata, args.queue)
    data = {
        "siteName": resource,
        "computingElement": args.queue,
        "prodSourceLabel": resolve_job_label(getattr(args, "version_tag", ""), args.job_label,
                                             str(getattr(queuedata, "status", "") or "")),
        "diskSpace": disk_space_for_getjob(ctx.mainworkdir, getattr(queuedata, "maxwdir", 0)),
        "workingGroup": args.working_group,
        "cpu": node.cpu_mhz,
        "mem": node.mem_mb,
        "node": node.node_name,
        "allowOtherCountry": args.allow_other_country,
    }
    if getattr(args, "jobtype", ""):
        data["jobType"] = args.jobtype
    if args.country_group:
        data["countryGroup"] = args.country_group
    if args.job_label == "self":
        from pilot.util.proxy import default_proxy_path, distinguished_name

        dn = distinguished_name(default_proxy_path())
        if dn:
            data["prodUserID"] = dn
    if jobs_done and last_taskid and args.allow_same_user:
        data["taskID"] = last_taskid
    if getattr(args, "resource_type", ""):
        data["resourceType"] = args.resource_type
    if background_mode(args, queuedata):
        data["background"] = "True"  # the dispatcher compares the string (REST: a JSON true)
    for env, key in (("HARVESTER_ID", "harvester_id"), ("HARVESTER_WORKER_ID", "worker_id")):
        if os.environ.get(env):
            data[key] = os.environ[env]
    return data


# ---------------------------------------------------------------------------- threads
class JobRetriever:
    """The getJob loop."""

    def __init__(self, ctx: PilotContext, node: Any) -> None:
        self.ctx = ctx
        self.node = node
        self.requests = 0
        self.failures = 0
        self.last_taskid = ""
        # a file-based backend (Harvester) is polled quickly and more often than a server
        poll = getattr(ctx.communicator, "job_poll_interval", None)
        self.retry_wait = float(poll if poll is not None else getattr(config.Pilot, "getjob_retry_wait", 60) or 60)
        self.max_requests = getattr(ctx.communicator, "max_job_requests", None)

    def proceed(self) -> bool:
        """Whether another getJob is allowed (request budget, timefloor, stop)."""
        ctx, args = self.ctx, self.ctx.args
        if ctx.events.graceful_stop.is_set():
            return False
        limit = int(self.max_requests if self.max_requests is not None else args.getjob_requests)
        if self.requests >= limit:
            logger.info("reached the maximum number of job requests (%s)", limit)
            return False
        if ctx.jobs_processed:
            timefloor = int(getattr(ctx.get_queuedata(), "timefloor", 0) or 0) * 60
            if not timefloor:
                logger.info("timefloor is 0: one job per pilot")
                return False
            if time.time() - ctx.start_time > timefloor:
                logger.info("the timefloor (%d s) has passed: no more jobs", timefloor)
                return False
        return True

    def fetch(self) -> Optional[dict]:
        """One job definition: a fake job, else whatever the communicator offers (file, Harvester, server)."""
        self.requests += 1
        if config.Pilot.pandajob == "fake":
            return get_fake_job()
        fields = getjob_fields(self.ctx, self.node, self.ctx.jobs_processed, self.last_taskid)
        logger.debug("job request %d: %s", self.requests, ", ".join(f"{k}={v}" for k, v in fields.items()))
        try:
            return self.ctx.communicator.get_job(fields)
        except (CommunicationFailure, OSError) as exc:
            logger.warning("job request failed: %s", exc)
            if failure_info(exc)[1]:  # cannot heal (TLS verification, URL scheme, 404): stop asking
                self.failures = max(self.failures, int(self.ctx.args.getjob_failures))
            return None

    def run(self) -> None:
        """Fetch, hand over, wait for completion; repeat while allowed."""
        ctx = self.ctx
        while self.proceed():
            if ctx.jobs_processed:
                ctx.reporter.flush_outbox()  # final updates an earlier job of this pilot could not deliver
            if not self._may_request():
                break
            pre = time.time()
            definition = self.fetch()
            job = self._make_job(definition)
            if job is not None and self._already_run(job):
                job = None
            if job is None:
                self.failures += 1
                if self.failures >= int(ctx.args.getjob_failures):
                    logger.info("no job after %d attempt(s): stopping", self.failures)
                    break
                if ctx.events.graceful_stop.wait(self.retry_wait):
                    break
                continue
            job.timing[c.PILOT_PRE_GETJOB] = pre
            job.timing[c.PILOT_POST_GETJOB] = time.time()
            self.last_taskid = job.taskid
            self._hand_over(job)
            if not self._wait_for_completion(job):
                break
            if self.max_requests is not None:
                self.requests = 0  # a polled backend (Harvester) has its budget per job, as in Pilot 2
        ctx.stop("no more jobs")

    def _may_request(self) -> bool:
        """The pre-getJob checks (plug-in, credential, free space: pilot.control.preflight)."""
        refused = preflight.refusal(self.ctx)
        if refused is None:
            return True
        self.ctx.pilot_error = self.ctx.pilot_error or refused.code
        return False

    def _make_job(self, definition: Optional[dict]) -> Optional[JobData]:
        if not definition:
            return None
        try:
            return create_job(definition, self.ctx.args.queue)
        except ValueError as exc:
            logger.error("unusable job definition: %s", exc)
            return None

    def _already_run(self, job: JobData) -> bool:
        """True (reported) when this pilot tree already ran ``job`` or still holds its final update or record."""
        ctx = self.ctx
        where = []
        recovery = ctx.recovery
        ledger = getattr(recovery, "ledger", None)
        if ledger is not None and ledger.knows(job.jobid):
            where.append("the ledger")
        outbox = getattr(ctx.reporter, "outbox", None)
        if outbox is not None and os.path.lexists(outbox.path(job.jobid)):
            where.append("the outbox")
        if recovery is not None and os.path.lexists(recovery.path(job.jobid)):
            where.append("the recovery records")
        with ctx.lock:
            if job.jobid in ctx.current_jobs:
                where.append("this pilot's current jobs")
        if not where:
            return False
        logger.error("job %s was handed out again but this pilot tree already has it (%s): it is not run "
                     "again", job.jobid, ", ".join(where))
        return True

    def _hand_over(self, job: JobData) -> None:
        ctx = self.ctx
        logger.info("received job %s", job.jobid)
        if background_mode(ctx.args, ctx.get_queuedata()):
            mark_background(job)
        ledger = getattr(ctx.recovery, "ledger", None)
        if ledger is not None:
            ledger.received(job.jobid)
        with ctx.lock:
            ctx.current_jobs[job.jobid] = job
        try:
            append_line(os.path.join(ctx.mainworkdir, config.Pilot.jobid_file), job.jobid)
        except OSError as exc:  # a full disk: the job still runs
            logger.warning("cannot record job %s in %s: %s", job.jobid, config.Pilot.jobid_file, exc)
        record_timing(ctx, job.jobid, {c.PILOT_PRE_GETJOB: job.timing[c.PILOT_PRE_GETJOB],
                                       c.PILOT_POST_GETJOB: job.timing[c.PILOT_POST_GETJOB]})
        ctx.queues.put("jobs", job)

    def _wait_for_completion(self, job: JobData) -> bool:
        """Block until the job's final update is done; False if the pilot is stopping."""
        while True:
            got = self.ctx.queues.get(("completed_jobs",))
            assert got is not None  # neither a time-out nor an until: get() returns an item
            done = got[1]
            self.ctx.queues.put("completed_jobids", done.jobid)
            if done.jobid == job.jobid:
                return not self.ctx.events.graceful_stop.is_set()


def validate(ctx: PilotContext) -> None:
    """jobs -> validated_jobs (or failed_jobs when the definition is unusable)."""
    while True:
        got = ctx.take(("jobs",))
        if got is None:
            return
        job = got[1]
        if _validate_job(ctx, job):
            job.advance(JobPhase.VALIDATED)
            ctx.queues.put("validated_jobs", job)
        else:
            from pilot.control.data import log_for_failed_job

            job.advance(JobPhase.FAILED)
            # a failed job gets its log too: through stage-out's failed_data_in (log only), when it can have one
            ctx.queues.put("failed_data_in" if log_for_failed_job(ctx, job) else "failed_jobs", job)


def _validate_job(ctx: PilotContext, job: JobData) -> bool:
    """Check the definition, create the work dir, let the experiment plug-in verify the job."""
    if job.errors:
        return False
    if not job.transformation and not job.is_eventservice:
        job.fail(ErrorCodes.NOTDEFINED, "job definition has no transformation")
        return False
    try:
        job.workdir = job_workdir(ctx.mainworkdir, job.jobid)
        mkdirs(job.workdir)
        for spec in job.indata + job.outdata + job.logdata:
            spec.workdir = job.workdir
        common = ctx.user.module("common")
        common.validate(job)
    except PilotException as exc:
        job.fail(exc.get_error_code(), exc.get_detail())
        return False
    return not job.errors


def queue_monitor(ctx: PilotContext) -> None:
    """Final updates: failed_jobs, finished_data_out, failed_data_out -> completed_jobs."""
    names = ("failed_jobs", "finished_data_out", "failed_data_out")
    while True:
        got = ctx.take(names)
        if got is None:
            return
        finish_job(ctx, got[1])


def finish_job(ctx: PilotContext, job: JobData) -> None:
    """Send the final update of ``job`` and hand it to the retriever (once: later calls do nothing)."""
    with ctx.lock:
        if c.PILOT_PRE_FINAL_UPDATE in job.timing:  # the pilot monitor may have reported a stuck job already
            logger.info("job %s: the final update was already made", job.jobid)
            return
        job.timing[c.PILOT_PRE_FINAL_UPDATE] = time.time()
    if job.phase not in (JobPhase.FINISHED, JobPhase.FAILED):
        job.advance(JobPhase.FAILED if job.errors else JobPhase.FINISHED)
    job.endtime = job.endtime or time.time()
    # stored in the outbox first (or acknowledged, its acknowledgement in the ledger): the record can go
    delivered = ctx.reporter.final(job)
    if ctx.recovery is not None and (delivered or ctx.reporter.is_stored(job.jobid)):
        ctx.recovery.remove(job.jobid)
    job.timing[c.PILOT_POST_FINAL_UPDATE] = time.time()
    logger.info("job %s ended %s (error %s)%s", job.jobid, job.state, job.errors.first()[0],
                "" if delivered else "; final update kept in the outbox")
    record_timing(ctx, job.jobid, {k: v for k, v in job.timing.items() if k.startswith("PILOT_")})
    ctx.job_left(job)
    if job.phase is JobPhase.FAILED and job.timing.get("stagein_failed"):
        ctx.stop("stage-in failed")


def record_timing(ctx: PilotContext, jobid: str, values: dict) -> None:
    """Merge time stamps into pilot_timing.json (``{jobid: {key: epoch}}``)."""
    path = os.path.join(ctx.mainworkdir, config.Pilot.timing_file)
    directory, name = os.path.split(path)
    with ctx.lock:
        data = {}
        if os.path.lexists(path):
            try:  # bounded and checked: the main work dir is within the payload's reach
                data = read_record(directory, name)
            except RejectedRecord as exc:
                set_aside(directory, name, str(exc))
        entry = data.get(str(jobid))
        data[str(jobid)] = dict(entry if isinstance(entry, dict) else {}, **values)
        try:
            write_json_atomic(path, data)
        except OSError as exc:  # a full disk loses a time stamp, not the job
            logger.warning("cannot write %s: %s", path, exc)
