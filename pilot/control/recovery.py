"""Job recovery: a job whose payload has run is never lost, even if stage-out fails or the pilot dies.

When a job enters stage-out, its state is written to the recovery area (``pilot_recovery/`` next to
the outbox, shared by the pilots started in the same place). The record is removed once the final
update has been stored in the outbox (which guarantees its delivery). A pilot that starts finds the
records of pilots that are gone, rebuilds those jobs, stages out what is left from their work dirs
and sends their final updates.

A stage-out that fails for a transient reason (storage or network down, time-out) does not fail the
job: the job is reported ``holding`` and left in the recovery area for the next pilot, at most
``MAX_RECOVERY_ATTEMPTS`` times.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.info.jobdata import JobData, JobPhase
from pilot.util.filehandling import read_json, write_json_atomic
from pilot.util.processes import read_stat

logger = logging.getLogger(__name__)

#: stage-out errors worth a later attempt by another pilot
TRANSIENT_STAGEOUT_CODES = {
    ErrorCodes.STAGEOUTFAILED, ErrorCodes.STAGEOUTTIMEOUT, ErrorCodes.SERVICENOTAVAILABLE,
    ErrorCodes.UNREACHABLENETWORK, ErrorCodes.PUTGLOBUSSYSERR, ErrorCodes.NOREMOTESPACE,
    ErrorCodes.RUCIOSERVICEUNAVAILABLE, ErrorCodes.COMMUNICATIONFAILURE,
}
MAX_RECOVERY_ATTEMPTS = 3

#: JobData attributes that carry the run's results
_STATE_FIELDS = ("workdir", "exitcode", "transexitcode", "exeerrorcode", "exeerrordiag", "cpuconsumptiontime",
                 "nevents", "neventsw", "dbtime", "dbdata", "metadata", "memory_summary", "extra_metrics",
                 "log_extracts", "outputs_xml", "timing", "starttime")


@dataclass
class RecoveryRecord:
    """What a later pilot needs to finish a job."""

    jobid: str
    definition: dict
    state: dict
    errors: list
    transferred: list  # LFNs already on storage
    pilot_pid: int
    pilot_start: int  # /proc start time of the owning pilot, to tell a recycled PID apart
    attempts: int = 0
    updated: float = field(default_factory=time.time)


def _own_identity() -> tuple:
    info = read_stat(os.getpid())
    return os.getpid(), info.starttime if info else 0


def pilot_alive(pid: int, start: int) -> bool:
    """True while the pilot that wrote a record still runs."""
    info = read_stat(pid)
    return info is not None and info.starttime == start and info.state not in ("Z", "X")


class RecoveryArea:
    """The records of jobs between payload end and stored final update."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path(self, jobid: str) -> str:
        return os.path.join(self.directory, f"{jobid}.json")

    def save(self, job: JobData, attempts: Optional[int] = None) -> None:
        """Write (or refresh) the record of ``job``."""
        pid, start = _own_identity()
        previous = attempts if attempts is not None else getattr(job, "recovery_attempts", 0)
        record = RecoveryRecord(
            jobid=job.jobid, definition=job.definition,
            state={name: getattr(job, name) for name in _STATE_FIELDS},
            errors=[list(e) for e in job.errors.entries()],
            transferred=[f.lfn for f in job.all_outputs if f.is_transferred],
            pilot_pid=pid, pilot_start=start, attempts=previous)
        write_json_atomic(self.path(job.jobid), record.__dict__)

    def remove(self, jobid: str) -> None:
        try:
            os.unlink(self.path(jobid))
        except FileNotFoundError:
            pass

    def orphans(self) -> list:
        """Records whose pilot is gone (oldest first)."""
        if not os.path.isdir(self.directory):
            return []
        found = []
        for name in sorted(os.listdir(self.directory)):
            if not name.endswith(".json"):
                continue
            try:
                record = RecoveryRecord(**read_json(os.path.join(self.directory, name)))
            except Exception as exc:  # an unreadable record must not stop the others
                logger.warning("ignoring unreadable recovery record %s: %s", name, exc)
                continue
            if not pilot_alive(record.pilot_pid, record.pilot_start):
                found.append(record)
        return sorted(found, key=lambda r: r.updated)


def restore(record: RecoveryRecord) -> JobData:
    """Rebuild a job from its record, ready for stage-out."""
    job = JobData.from_definition(record.definition)
    job.errors.clear()
    for entry in record.errors:
        if int(entry[0]) not in TRANSIENT_STAGEOUT_CODES:  # those are the reason to try again
            job.errors.add(int(entry[0]), str(entry[1]) if len(entry) > 1 else "")
    for name, value in record.state.items():
        setattr(job, name, value)
    done = set(record.transferred)
    for spec in job.all_outputs:
        spec.workdir = job.workdir
        if spec.lfn in done:
            spec.status, spec.status_code = "transferred", 0
    for spec in job.indata:
        spec.status = "transferred"
    job.phase = JobPhase.STAGEOUT
    job.recovered = True
    job.recovery_attempts = record.attempts + 1
    return job


def resume_orphans(ctx: Any) -> list:
    """Hand the jobs left by pilots that are gone to this pilot's stage-out; return their ids."""
    area = ctx.recovery
    resumed = []
    for record in area.orphans():
        try:
            job = restore(record)
        except Exception as exc:  # a record we cannot use must not block the pilot
            logger.error("cannot recover job %s: %s", record.jobid, exc)
            continue
        logger.info("recovering job %s (attempt %d) from %s", job.jobid, job.recovery_attempts, job.workdir)
        area.save(job, attempts=job.recovery_attempts)  # now owned by this pilot
        with ctx.lock:
            ctx.current_jobs[job.jobid] = job
        ctx.queues.put("failed_payloads" if job.errors else "finished_payloads", job)
        resumed.append(job.jobid)
    return resumed


def is_transient_stageout_failure(job: JobData) -> bool:
    """Whether the job's (only) problem is a stage-out another pilot may retry."""
    codes = job.errors.codes
    return bool(codes) and all(code in TRANSIENT_STAGEOUT_CODES for code in codes)
