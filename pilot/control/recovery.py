"""Job recovery: a job whose payload has run is never lost, even if stage-out fails or the pilot dies.

When a job enters stage-out, its state is written to the recovery area (``pilot_recovery/`` next to
the outbox, shared by the pilots started in the same place). The record is removed once the final
update has been stored in the outbox (which guarantees its delivery), or, when the disk refused that
write, once the server acknowledged it. A pilot that starts finds the records of pilots that are
gone, rebuilds those jobs, stages out what is left from their work dirs and sends their final
updates. A record is believed only after :meth:`RecoveryArea.check` (see :mod:`pilot.util.statefile`):
a job of this pilot tree's ledger whose final update was not acknowledged, a work dir inside the
tree, output names inside that work dir. A job whose acknowledgement is in the ledger is never
staged out or reported again, whatever moment the pilot that ran it was killed at.

A stage-out that fails for a transient reason (storage or network down, time-out) does not fail the
job: the job is reported ``holding`` and left in the recovery area for the next pilot, at most
``MAX_RECOVERY_ATTEMPTS`` times.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.info.jobdata import JobData, JobPhase
from pilot.util.filehandling import write_json_atomic
from pilot.util.processes import read_stat
from pilot.util.statefile import Ledger, StateLayout, read_valid, set_aside

if TYPE_CHECKING:
    from pilot.control.context import PilotContext

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

_NUMERIC_FIELDS = ("exitcode", "transexitcode", "exeerrorcode", "cpuconsumptiontime", "nevents", "neventsw",
                   "starttime")


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


_RECORD_RE = re.compile(r"^([0-9]{1,20})\.json$")
_SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9_.:+-]{1,255}$")


class RecoveryArea:
    """The records of jobs between payload end and stored final update.

    Records are read back only through :func:`pilot.util.statefile.read_valid` and believed only when
    :meth:`check` finds nothing wrong; what fails is set aside and never staged out or reported.
    """

    def __init__(self, directory: str, layout: Optional[StateLayout] = None,
                 ledger: Optional[Ledger] = None) -> None:
        self.directory = directory
        self.layout = layout
        self.ledger = ledger

    def path(self, jobid: str) -> str:
        return os.path.join(self.directory, f"{jobid}.json")

    def save(self, job: JobData, attempts: Optional[int] = None) -> bool:
        """Write (or refresh) the record of ``job``; False (logged) when the disk refuses it."""
        pid, start = _own_identity()
        previous = attempts if attempts is not None else getattr(job, "recovery_attempts", 0)
        record = RecoveryRecord(
            jobid=job.jobid, definition=job.definition,
            state={name: getattr(job, name) for name in _STATE_FIELDS},
            errors=[list(e) for e in job.errors.entries()],
            transferred=[f.lfn for f in job.all_outputs if f.is_transferred],
            pilot_pid=pid, pilot_start=start, attempts=previous)
        try:
            write_json_atomic(self.path(job.jobid), record.__dict__)
        except OSError as exc:
            logger.error("job %s: cannot write its recovery record: %s", job.jobid, exc)
            return False
        return True

    def remove(self, jobid: str) -> None:
        try:
            os.unlink(self.path(jobid))
        except FileNotFoundError:
            pass

    def orphans(self) -> list:
        """Valid records whose pilot is gone (oldest first); the invalid ones are set aside."""
        found = []
        for name, match, raw in read_valid(self.directory, _RECORD_RE):
            jobid = match.group(1)
            try:
                record = RecoveryRecord(**raw)
            except TypeError as exc:
                set_aside(self.directory, name, f"not a recovery record: {exc}")
                continue
            problem = self.check(jobid, record)
            if problem == "acknowledged":
                logger.info("job %s: its final update was acknowledged: nothing to recover", jobid)
                self.remove(jobid)
                continue
            if problem:
                set_aside(self.directory, name, problem)
                continue
            if not pilot_alive(record.pilot_pid, record.pilot_start):
                found.append(record)
        return sorted(found, key=lambda r: r.updated)

    def check(self, jobid: str, record: RecoveryRecord) -> str:
        """Why ``record`` (found under ``jobid``) must not be believed; '' when it may."""
        if record.jobid != jobid or not isinstance(record.definition, dict) \
                or str(record.definition.get("PandaID", "")) != jobid:
            return "the record does not name the job of its file name"
        if not isinstance(record.state, dict) or not isinstance(record.errors, list) \
                or not isinstance(record.transferred, list):
            return "malformed record"
        if not all(isinstance(v, int) and not isinstance(v, bool)
                   for v in (record.pilot_pid, record.pilot_start, record.attempts)) \
                or not isinstance(record.updated, (int, float)):
            return "malformed record"
        numeric = [record.state.get(n) for n in _NUMERIC_FIELDS]
        if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in numeric):
            return "malformed record"
        if not all(isinstance(e, list) and e and isinstance(e[0], int) for e in record.errors):
            return "malformed record"
        if self.ledger is not None:
            if not self.ledger.knows(jobid):
                return f"job {jobid} was never run by this pilot tree"
            if self.ledger.is_acknowledged(jobid):
                return "acknowledged"
        if self.layout is not None and not self.layout.workdir_inside(record.state.get("workdir"), jobid):
            return f"work dir {str(record.state.get('workdir'))[:200]!r} is not this tree's work dir of job {jobid}"
        try:
            job = JobData.from_definition(record.definition)
        except Exception as exc:  # a definition the pilot cannot use
            return f"unusable job definition: {exc}"
        names = [spec.lfn for spec in job.all_outputs] + [str(x) for x in record.transferred]
        bad = [n for n in names if not _SAFE_NAME_RE.match(n) or n in (".", "..")]
        if bad:
            return f"file name(s) not inside the work dir: {bad[:3]}"
        return ""


def restore(record: RecoveryRecord) -> JobData:
    """Rebuild a job from its (checked) record, ready for stage-out."""
    job = JobData.from_definition(record.definition)
    job.errors.clear()
    for entry in record.errors:
        if int(entry[0]) not in TRANSIENT_STAGEOUT_CODES:  # those are the reason to try again
            job.errors.add(int(entry[0]), str(entry[1]) if len(entry) > 1 else "")
    for name in _STATE_FIELDS:  # only the fields the pilot writes, never an attribute a record names
        if name in record.state:
            setattr(job, name, record.state[name])
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


def resume_orphans(ctx: PilotContext) -> list:
    """Hand the jobs left by pilots that are gone to this pilot's stage-out; return their ids."""
    area = ctx.recovery
    if area is None:  # no recovery area in this run: nothing to resume
        return []
    outbox = getattr(ctx.reporter, "outbox", None)
    resumed = []
    for record in area.orphans():
        if outbox is not None and os.path.lexists(outbox.path(record.jobid)):
            # its final update was made and stored: the outbox delivers it, nothing is staged out again
            logger.info("job %s: its final update is in the outbox: not recovered again", record.jobid)
            area.remove(record.jobid)
            continue
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


def jobs_waiting_in(directory: str, mainworkdir: str) -> list:
    """PandaIDs of the readable records in ``directory`` whose work dir lies in ``mainworkdir``.

    Read like every record (bounded, checked, the unreadable ones set aside): the pilot uses it at
    its end, to keep a main work dir a later pilot still needs.
    """
    main = os.path.abspath(mainworkdir)
    needed = []
    for _name, match, raw in read_valid(directory, _RECORD_RE):
        state = raw.get("state")
        workdir = str(state.get("workdir") or "") if isinstance(state, dict) else ""
        if workdir == main or workdir.startswith(main + os.sep):
            needed.append(match.group(1))
    return needed


def is_transient_stageout_failure(job: JobData) -> bool:
    """Whether the job's (only) problem is a stage-out another pilot may retry."""
    codes = job.errors.codes
    return bool(codes) and all(code in TRANSIENT_STAGEOUT_CODES for code in codes)
