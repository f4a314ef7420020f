"""Job reporting: one pure function builds the updateJob fields, one object sends them.

Every backend (PanDA server, Harvester files, aCT file) receives the same dictionary. A final
update is written to the on-disk outbox before it is sent and removed only after the server
acknowledged it, so a final state is never lost: the next job loop or the next pilot started in the
same place sends what is left.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import CommunicationFailure
from pilot.info.jobdata import JobData
from pilot.util import constants as c
from pilot.util.filehandling import write_json_atomic
from pilot.util.jobmetrics import default_job_metrics
from pilot.util.statefile import Ledger, read_valid, set_aside
from pilot.util.timing import time_stamp

if TYPE_CHECKING:
    from pilot.control.context import Communicator

logger = logging.getLogger(__name__)

#: codes that are sent negated for user analysis jobs (the server may retry them)
RECOVERABLE_FOR_ANALYSIS = {1137, 1141, 1152, 1181, 1135, 1136}
MAX_STDOUT = 2048
MAX_PILOTLOG = 1024


@dataclass
class SiteInfo:
    """Static fields of every update for this pilot run."""

    site_name: str
    node: str
    pilot_id: str
    batch_id: str = ""
    scheduler_id: str = ""
    cpu_conversion_factor: float = 1.0
    cpu_consumption_unit: str = ""


#: the format of startTime and endTime: the only one both server generations parse (0.8 drops others
#: silently, 1.x logs "Invalid startTime"); the server keeps its times in UTC
SERVER_TIME = "%Y-%m-%d %H:%M:%S"

#: the pilot's job sub-state per phase (the phase a final update ended in is taken from the job's timing)
_SUBSTATE = {"received": "setup", "validated": "setup", "stagein": "stagein", "payload": "running",
             "stageout": "stageout"}


def server_time(epoch: float) -> str:
    """``epoch`` as UTC ``%Y-%m-%d %H:%M:%S`` (startTime and endTime)."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime(SERVER_TIME)


def job_substate(job: JobData) -> str:
    """The pilot's sub-state of ``job``: setup, stagein, running or stageout.

    A finished or failed job keeps the sub-state of the last phase it reached.
    """
    phase = getattr(job.phase, "value", str(job.phase))
    if phase in _SUBSTATE:
        return _SUBSTATE[phase]
    reached = [p for p in ("stageout", "payload", "stagein") if p in job.timing]
    return _SUBSTATE[reached[0]] if reached else "setup"


def mean_core_count(job: JobData) -> Optional[float]:
    """The mean of the actual core counts sampled while the payload ran (None before any sample)."""
    samples = [c for c in getattr(job, "corecounts", None) or [] if isinstance(c, (int, float)) and c > 0]
    return round(sum(samples) / len(samples), 2) if samples else None


def pilot_timing(job: JobData, pilot_start: float) -> str:
    """``getjob|stagein|payload|stageout|setup`` in whole seconds."""
    t = job.timing

    def span(a: str, b: str) -> int:
        return int(round(t[b] - t[a])) if a in t and b in t and t[b] >= t[a] else 0

    setup = span(c.PILOT_POST_STAGEIN, c.PILOT_PRE_PAYLOAD)
    if c.PILOT_PRE_GETJOB in t:
        setup += max(0, int(round(t[c.PILOT_PRE_GETJOB] - pilot_start)))
    values = (span(c.PILOT_PRE_GETJOB, c.PILOT_POST_GETJOB), span(c.PILOT_PRE_STAGEIN, c.PILOT_POST_STAGEIN),
              span(c.PILOT_PRE_PAYLOAD, c.PILOT_POST_PAYLOAD), span(c.PILOT_PRE_STAGEOUT, c.PILOT_POST_STAGEOUT),
              setup)
    return "|".join(str(x) for x in values)


def build_update(job: JobData, site: SiteInfo, final: bool, pilot_start: float,
                 job_metrics: Optional[str] = None) -> dict:
    """The updateJob fields for ``job`` (a heartbeat when ``final`` is False).

    ``job_metrics`` is the experiment plug-in's jobMetrics string (the generic one when None).
    """
    state = job.state if final else ("starting" if job.state == "starting" else "running")
    data: dict[str, Any] = {
        "jobId": job.jobid,
        "state": state,
        "timestamp": time_stamp(),
        "siteName": site.site_name,
        "node": site.node,
        "attemptNr": job.attemptnr,
        "pilotID": site.pilot_id,
        "startTime": server_time(job.starttime),  # when the job was received
        "coreCount": job.corecount,
        "jobSubStatus": job_substate(job),
        "jobMetrics": job_metrics if job_metrics is not None else default_job_metrics(job),
        "cpuConversionFactor": site.cpu_conversion_factor,
    }
    if site.scheduler_id:
        data["schedulerID"] = site.scheduler_id
    if site.batch_id:
        data["batchID"] = site.batch_id
    mean = mean_core_count(job)
    if mean is not None:
        data["meanCoreCount"] = mean
    if job.nevents:
        data["nEvents"] = job.nevents
    if job.cpuconsumptiontime is not None:
        data["cpuConsumptionTime"] = int(round(job.cpuconsumptiontime))
        data["cpuConsumptionUnit"] = site.cpu_consumption_unit
    data.update({k: v for k, v in job.memory_summary.items() if v is not None})
    if job.debug_stdout:
        data["stdout"] = job.debug_stdout[-MAX_STDOUT:]
    if final:
        data.update(_final_fields(job, pilot_start))
    return data


def _final_fields(job: JobData, pilot_start: float) -> dict:
    code, diag = job.errors.first()
    if code and job.is_analysis and code in RECOVERABLE_FOR_ANALYSIS:
        code = -code
    fields = {
        "pilotErrorCode": code,
        "pilotErrorDiag": ErrorCodes.format_diagnostics(abs(code), diag) if code else "",
        "transExitCode": job.transexitcode,
        "exeErrorCode": job.exeerrorcode,
        "exeErrorDiag": job.exeerrordiag,
        "pilotTiming": pilot_timing(job, pilot_start),
        "endTime": server_time(job.endtime or time.time()),
    }
    if job.log_extracts:
        fields["pilotLog"] = job.log_extracts[-MAX_PILOTLOG:]
    if job.outputs_xml:
        fields["xml"] = json.dumps(job.outputs_xml, separators=(",", ":"))  # the server parses it: no blanks
    if job.metadata:
        fields["metaData"] = job.metadata
    return fields


_FINAL_RE = re.compile(r"^([0-9]{1,20})\.final\.json$")
_RANGES_RE = re.compile(r"^ranges-([0-9]+\.[0-9]{6}-[0-9a-f]{8})\.json$")
FINAL_STATES = ("finished", "failed", "closed", "cancelled")


class Outbox:
    """Final updates kept on disk until the server has them.

    What is read back is checked (:mod:`pilot.util.statefile`): a final update is believed only when
    its file is a regular file of the pilot of bounded size, it names the job of its file name, that
    job is in the ledger of this pilot tree (when a ledger is given) and not yet acknowledged, and its
    fields are a final update of that job. Anything else is set aside and never sent.
    """

    def __init__(self, directory: str, ledger: Optional[Ledger] = None) -> None:
        self.directory = directory
        self.ledger = ledger
        self._lock = threading.Lock()

    def path(self, jobid: str) -> str:
        return os.path.join(self.directory, f"{jobid}.final.json")

    def put(self, jobid: str, fields: dict) -> None:
        """Store the final update of ``jobid`` (replacing an older one); raises OSError (e.g. ENOSPC)."""
        with self._lock:
            write_json_atomic(self.path(jobid), {"jobid": jobid, "fields": fields, "stored": time.time()})

    def remove(self, jobid: str) -> None:
        with self._lock:
            try:
                os.unlink(self.path(jobid))
            except FileNotFoundError:
                pass

    def put_ranges(self, ranges: list, version: int) -> str:
        """Store an event-range update before it is sent; return its key for :meth:`remove_ranges`."""
        key = f"{time.time():.6f}-{os.urandom(4).hex()}"
        with self._lock:
            write_json_atomic(os.path.join(self.directory, f"ranges-{key}.json"),
                              {"ranges": ranges, "version": version, "stored": time.time()})
        return key

    def remove_ranges(self, key: str) -> None:
        try:
            os.unlink(os.path.join(self.directory, f"ranges-{key}.json"))
        except FileNotFoundError:
            pass

    def pending_ranges(self) -> list:
        """(key, ranges, version) of every stored event-range update, oldest first."""
        found = []
        for name, match, entry in read_valid(self.directory, _RANGES_RE):
            ranges, version = entry.get("ranges"), entry.get("version")
            if not isinstance(ranges, list) or not all(isinstance(r, dict) for r in ranges) \
                    or not isinstance(version, int) or isinstance(version, bool):
                set_aside(self.directory, name, "not an event-range update")
                continue
            found.append((match.group(1), ranges, version))
        return found

    def pending(self) -> list:
        """(jobid, fields) of every stored final update that passes the checks, oldest first."""
        entries = []
        for name, match, entry in read_valid(self.directory, _FINAL_RE):
            jobid = match.group(1)
            problem = self._problem(jobid, entry)
            if problem == "acknowledged":
                logger.info("job %s: the final update was already acknowledged: not sent again", jobid)
                self.remove(jobid)
                continue
            if problem:
                set_aside(self.directory, name, problem)
                continue
            stored = entry.get("stored", 0)
            entries.append((stored if isinstance(stored, (int, float)) else 0, jobid, entry["fields"]))
        return [(jobid, fields) for _, jobid, fields in sorted(entries)]

    def _problem(self, jobid: str, entry: dict) -> str:
        """Why a stored final update must not be sent ('' when it may)."""
        fields = entry.get("fields")
        if entry.get("jobid") != jobid or not isinstance(fields, dict):
            return "the record does not name the job of its file name"
        if str(fields.get("jobId", "")) != jobid or fields.get("state") not in FINAL_STATES:
            return "not a final update of this job"
        if self.ledger is not None:
            if not self.ledger.knows(jobid):
                return f"job {jobid} was never run by this pilot tree"
            if self.ledger.is_acknowledged(jobid):
                return "acknowledged"
        return ""


class DurableRangeUpdates:
    """A communicator whose event-range updates go through the outbox (stored, sent, removed on success)."""

    def __init__(self, communicator: Communicator, outbox: Optional[Outbox]) -> None:
        self._communicator = communicator
        self._outbox = outbox

    def __getattr__(self, name: str) -> Any:
        return getattr(self._communicator, name)

    def update_event_ranges(self, ranges: list, version: int = 1) -> Any:
        outbox = self._outbox
        key = outbox.put_ranges(ranges, version) if outbox is not None else None
        reply = self._communicator.update_event_ranges(ranges, version=version)  # raises: the entry stays
        if outbox is not None and key is not None:
            outbox.remove_ranges(key)
        return reply


class Reporter:
    """Send heartbeats and final updates through the communicator and the outbox."""

    def __init__(self, communicator: Communicator, site: SiteInfo, outbox: Optional[Outbox], pilot_start: float,
                 enabled: bool = True, listeners: Optional[list] = None,
                 metrics: Optional[Callable[[JobData], str]] = None) -> None:
        self.communicator = communicator
        self.site = site
        self.outbox = outbox
        self.pilot_start = pilot_start
        self.enabled = enabled
        self.listeners = listeners or []  # callables(fields, final) e.g. Harvester attribute files
        self.metrics = metrics or default_job_metrics  # the experiment's jobMetrics builder
        self._lock = threading.Lock()
        self.finalized: set = set()  # jobs whose final update was built: no heartbeat after it
        self.last_update: dict = {}  # jobid -> monotonic time of the last update sent
        self.unsaved: dict = {}  # jobid -> final fields the outbox could not store (disk full)

    def heartbeat(self, job: JobData, state: Optional[str] = None) -> Optional[dict]:
        """Send a non-final update (``state`` overrides, e.g. holding); return the reply or None."""
        if job.jobid in self.finalized:
            return None
        fields = build_update(job, self.site, final=False, pilot_start=self.pilot_start,
                              job_metrics=self._metrics(job))
        if state:
            fields["state"] = state
        return self._send(job.jobid, fields, final=False)

    def final(self, job: JobData) -> bool:
        """Store and send the final update; True when the server acknowledged it.

        A failure to store it (a full disk) does not stop the send: the fields are sent from memory
        and kept in :attr:`unsaved`, whose outbox write is retried by :meth:`retry_unsaved`.
        """
        self.finalized.add(job.jobid)
        fields = build_update(job, self.site, final=True, pilot_start=self.pilot_start,
                              job_metrics=self._metrics(job))
        self._store(job.jobid, fields)
        reply = self._send(job.jobid, fields, final=True)
        if reply is not None:
            self.acknowledge(job.jobid)
        return reply is not None

    def is_stored(self, jobid: str) -> bool:
        """Whether the final update of ``jobid`` is safe: delivered, or in the outbox."""
        return jobid not in self.unsaved

    def _store(self, jobid: str, fields: dict) -> bool:
        if self.outbox is None:
            return True
        try:
            self.outbox.put(jobid, fields)
        except OSError as exc:
            logger.error("job %s: cannot store the final update in the outbox (%s): sending it from memory",
                         jobid, exc)
            self.unsaved[jobid] = fields
            return False
        self.unsaved.pop(jobid, None)
        return True

    def retry_unsaved(self) -> int:
        """Write the final updates the outbox could not take earlier; return how many are still unsaved."""
        for jobid, fields in list(self.unsaved.items()):
            if self._store(jobid, fields):
                logger.info("job %s: the final update is now stored in the outbox", jobid)
        return len(self.unsaved)

    def acknowledge(self, jobid: str) -> None:
        """The server has the final update: mark it acknowledged (atomically) first, then drop the copies."""
        self.unsaved.pop(jobid, None)
        if self.outbox is None:
            return
        if self.outbox.ledger is not None:
            self.outbox.ledger.acknowledged(jobid)
        self.outbox.remove(jobid)

    def _metrics(self, job: JobData) -> str:
        try:
            return self.metrics(job)
        except Exception as exc:  # a plug-in bug must not block the update
            logger.warning("job %s: jobMetrics builder failed: %s", job.jobid, exc)
            return default_job_metrics(job)

    def flush_outbox(self) -> int:
        """Resend stored final updates (and those only in memory); return how many were delivered."""
        if self.outbox is None or not self.enabled:
            return 0
        self.retry_unsaved()
        delivered = 0
        for key, ranges, version in self.outbox.pending_ranges():
            try:
                self.communicator.update_event_ranges(ranges, version=version)
            except CommunicationFailure as exc:
                logger.warning("stored event-range update still not delivered: %s", exc)
                continue
            self.outbox.remove_ranges(key)
            delivered += 1
        pending = self.outbox.pending()
        stored = {jobid for jobid, _ in pending}
        pending += [(jobid, fields) for jobid, fields in list(self.unsaved.items()) if jobid not in stored]
        for jobid, fields in pending:
            logger.info("resending the stored final update of job %s", jobid)
            if self._send(jobid, fields, final=True) is not None:
                self.acknowledge(jobid)
                delivered += 1
        return delivered

    def _send(self, jobid: str, fields: dict, final: bool) -> Optional[dict]:
        for listener in self.listeners:
            try:
                listener(fields, final)
            except Exception as exc:
                logger.warning("update listener failed: %s", exc)
        if not self.enabled:
            return {}
        with self._lock:
            try:
                reply = self.communicator.update_job(fields, final=final)
            except CommunicationFailure as exc:
                logger.warning("job %s: %s update not delivered: %s", jobid, "final" if final else "heartbeat", exc)
                return None
            self.last_update[jobid] = time.monotonic()
        logger.info("job %s: sent %s update (state=%s)", jobid, "final" if final else "a", fields.get("state"))
        return reply
