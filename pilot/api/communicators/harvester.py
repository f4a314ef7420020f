"""The Harvester backend: jobs, updates and event ranges through the files of Harvester's shared-file messenger.

Jobs (:meth:`HarvesterCommunicator.get_job`): a job definition Harvester placed is read first. When
none is waiting the pilot asks for one with ``worker_requestjob.json`` (once per wanted job; the
request is removed when a definition is read, as Harvester does when it feeds one). In PUSH mode
that is all: the server is never asked. In PULL mode the PanDA server is asked next, and the
PandaIDs taken from it are listed in ``worker_pandaids.json`` for Harvester's pull-mode monitor.

Updates (:meth:`HarvesterCommunicator.update_job`): with ``-z`` every update rewrites the job's
``worker_attributes.json`` and the final one also writes ``event_status.dump.json`` and the cleaned
``jobReport.json``; without ``-z`` (PUSH mode with a Harvester id in the environment) the updates go
to the server. ``worker_heartbeat.json`` is refreshed on every update and every
``[Harvester] heartbeat_interval`` seconds; ``kill_worker`` is left at exit (:meth:`close`).

Event ranges: ``worker_requestevents.json`` asks, ``JobsEventRanges.json`` answers (read, then
renamed to ``*.read``); updates are added to ``worker_updateevents.json``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Optional

from pilot.api.communicators.jobfiles import JobFiles
from pilot.common.exception import CommunicationFailure
from pilot.util import harvester as hv
from pilot.util.filehandling import read_json
from pilot.util.timing import time_stamp

logger = logging.getLogger(__name__)


class HarvesterCommunicator:
    """Talk to Harvester through its shared files (and to the server where the mode says so)."""

    name = "harvester"

    def __init__(self, dirs: hv.HarvesterDirs, mode: str = "PUSH", server: Any = None, file_updates: bool = True,
                 job_lookup: Optional[Callable[[str], Any]] = None, stop_event: Optional[threading.Event] = None,
                 poll_interval: float = 1.0, max_requests: int = 60, heartbeat_interval: float = 60.0,
                 events_timeout: float = 600.0) -> None:
        self.dirs = dirs
        self.mode = mode.upper()
        self.server = server
        self.file_updates = file_updates or server is None
        self.job_lookup = job_lookup or (lambda jobid: None)
        self.stop_event = stop_event or threading.Event()
        self.job_poll_interval = poll_interval  # read by the job retriever
        self.max_job_requests = max_requests
        self.heartbeat_interval = heartbeat_interval
        self.events_timeout = events_timeout
        self.jobs = JobFiles(dirs, use_jobs_list=self.mode == "PUSH")
        self.pulled: list = []  # PandaIDs taken from the server (PULL)
        self.range_owner: dict = {}  # eventRangeID -> PandaID
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ jobs
    def get_job(self, fields: dict) -> Optional[dict]:
        """A job from Harvester's files, else (PULL only) from the server; None when there is none yet."""
        self.heartbeat()
        definition = self.jobs.take()
        if definition:
            self._request_done()
            return definition
        if self.mode == "PULL" and self.server is not None:
            definition = self.server.get_job(fields)
            if definition:
                self._request_done()
                self._list_pulled(JobFiles.pandaid(definition))
                return definition
        self._request_job()
        return None

    def _request_job(self) -> None:
        path = self.dirs.top(self.dirs.names.job_request)
        if not os.path.exists(path):
            logger.info("asking Harvester for a job (%s)", path)
            hv.write_json(path, {"nJobs": 1})

    def _request_done(self) -> None:
        if hv.remove(self.dirs.top(self.dirs.names.job_request)):
            logger.info("removed the job request file")

    def _list_pulled(self, pandaid: str) -> None:
        if pandaid:
            self.pulled.append(pandaid)
            hv.write_json(self.dirs.top(self.dirs.names.jobs_list), [_id(p) for p in self.pulled])

    # ------------------------------------------------------------------ updates
    def update_job(self, fields: dict, final: bool = False) -> dict:
        """Write the Harvester files of this update (or send it to the server without ``-z``)."""
        self.heartbeat()
        if not self.file_updates:
            return self.server.update_job(fields, final=final)
        jobid = str(fields.get("jobId", ""))
        try:
            hv.write_json(self.dirs.job_file(self.dirs.names.worker_attributes, jobid), hv.worker_attributes(fields))
            if final:
                self._publish_final(jobid)
        except OSError as exc:
            raise CommunicationFailure(f"cannot write the Harvester files of job {jobid}: {exc}") from exc
        return {"StatusCode": 0, "command": None}

    def _publish_final(self, jobid: str) -> None:
        """event_status.dump.json with the log and transferred outputs, and the cleaned jobReport.json."""
        job = self.job_lookup(jobid)
        if job is None:
            logger.warning("job %s is no longer known: no output list for Harvester", jobid)
            return
        entries = hv.stageout_entries(job, search_dirs=[self.dirs.job_dir(jobid)])
        if entries:
            path = self.dirs.job_file(self.dirs.names.event_status, jobid)
            hv.write_json(path, {jobid: entries})
            logger.info("job %s: %d file(s) declared to Harvester in %s", jobid, len(entries), path)
        copy = self.dirs.job_file(self.dirs.names.jobreport, jobid)
        report = os.path.join(getattr(job, "workdir", "") or "", self.dirs.names.jobreport)
        if getattr(job, "workdir", "") and os.path.isfile(report):
            try:
                hv.write_json(copy, hv.clean_job_report(read_json(report)))
                return
            except Exception as exc:  # an unreadable report must not stop the final update
                logger.warning("job %s: job report not copied for Harvester: %s", jobid, exc)
        if hv.remove(copy):  # an earlier job's report must not be taken for this job's
            logger.info("job %s: removed the job report of an earlier job from %s", jobid, copy)

    # ------------------------------------------------------------------ liveness and exit
    def heartbeat(self) -> None:
        """Refresh worker_heartbeat.json (Harvester checks its modification time)."""
        try:
            hv.write_json(self.dirs.top(self.dirs.names.heartbeat),
                          {"time": int(time.time()), "timestamp": time_stamp(), "pid": os.getpid()})
        except OSError as exc:
            logger.warning("cannot write the worker heartbeat: %s", exc)

    def checks(self) -> list:
        """Periodic tasks for the job monitor: (name, period, func(ctx))."""
        return [("worker_heartbeat", self.heartbeat_interval, lambda _ctx: self.heartbeat())]

    def close(self) -> None:
        """Tell Harvester the pilot is done: the ``kill_worker`` marker."""
        path = self.dirs.top(self.dirs.names.kill_worker)
        try:
            hv.write_marker(path)
            logger.info("wrote %s for Harvester", path)
        except OSError as exc:
            logger.warning("cannot write %s: %s", path, exc)

    # ------------------------------------------------------------------ event ranges
    def get_event_ranges(self, fields: dict) -> list:
        """Ask Harvester for event ranges and wait for its answer (``events_timeout`` seconds at most)."""
        pandaid = str(fields.get("pandaID") or fields.get("PandaID") or "")
        feed = self.dirs.top(self.dirs.names.event_ranges)
        request = {pandaid: {"pandaID": _id(pandaid), "jobsetID": fields.get("jobsetID", ""),
                             "taskID": fields.get("taskID", ""), "nRanges": int(fields.get("nRanges", 1) or 1)}}
        with self._lock:
            if os.path.exists(feed):
                hv.consume(feed)  # an answer to an earlier request must not be taken for this one
            hv.write_json(self.dirs.top(self.dirs.names.request_events), request)
            answer = self._wait_for(feed)
            hv.consume(feed)
        ranges = (answer.get(pandaid) or answer.get(_id(pandaid)) or []) if isinstance(answer, dict) else []
        for item in ranges:
            if isinstance(item, dict) and item.get("eventRangeID"):
                self.range_owner[str(item["eventRangeID"])] = pandaid
        logger.info("job %s: %d event range(s) from Harvester", pandaid, len(ranges))
        return list(ranges)

    def _wait_for(self, path: str) -> Any:
        deadline = time.monotonic() + self.events_timeout
        while True:
            try:
                value = hv.read_json_file(path)
            except hv.IncompleteFile:
                value = None
            if value is not None:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CommunicationFailure(f"no event ranges from Harvester in {self.events_timeout:.0f} s")
            if self.stop_event.wait(min(self.job_poll_interval, remaining)):
                raise CommunicationFailure("the pilot is stopping: no event ranges")

    def update_event_ranges(self, ranges: list, version: int = 1, pandaid: str = "") -> dict:
        """Add range states to the job's ``worker_updateevents.json`` (``{PandaID: [entries]}``)."""
        entries = hv.flatten_event_updates(ranges)
        grouped: dict = {}
        for entry in entries:
            owner = pandaid or self.range_owner.get(str(entry.get("eventRangeID", ""))) or _range_pandaid(entry)
            grouped.setdefault(owner, []).append(entry)
        try:
            for owner, items in grouped.items():
                hv.merge_json_list_map(self.dirs.job_file(self.dirs.names.update_events, owner), {owner: items})
        except OSError as exc:
            raise CommunicationFailure(f"cannot write the event updates: {exc}") from exc
        return {"StatusCode": 0, "Returns": [True] * len(entries)}


def _id(pandaid: Any) -> Any:
    """A PandaID as Harvester writes it (an int when it is one)."""
    text = str(pandaid)
    return int(text) if text.isdigit() else text


def _range_pandaid(entry: dict) -> str:
    """The PandaID inside an eventRangeID (``<taskID>-<PandaID>-...``), '' when it has none."""
    parts = str(entry.get("eventRangeID", "")).split("-")
    return parts[1] if len(parts) > 2 and parts[1].isdigit() else ""
