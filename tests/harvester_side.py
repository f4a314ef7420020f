"""Harvester's side of the shared-file protocol, for tests.

Plays the part of Harvester's shared-file messenger as it behaves (HSF/harvester,
``harvestermessenger/shared_file_messenger.py``): it writes its own files in place (not
atomically), reads the pilot's files, and consumes the output list and the event updates by
renaming them to ``*.read``. Multi-job workers get one sub-directory per PandaID; the job request,
the PandaID list, the event request and feed, the heartbeat and the kill marker are at the top.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlencode

READ = ".read"


class HarvesterSide:
    """One worker's access point, seen from Harvester."""

    def __init__(self, access_point: Path, multi_jobs: bool = False, job_spec_file: str = "pandaJobData.out",
                 kill_worker_file: str = "kill_worker.json") -> None:
        self.ap = Path(access_point)
        self.ap.mkdir(parents=True, exist_ok=True)
        self.multi_jobs = multi_jobs
        self.job_spec_file = job_spec_file
        self.kill_worker_file = kill_worker_file

    # ------------------------------------------------------------ places
    def job_ap(self, pandaid: Any) -> Path:
        """The access point of one job (a sub-directory per PandaID for multi-job workers)."""
        return self.ap / str(pandaid) if self.multi_jobs else self.ap

    # ------------------------------------------------------------ jobs
    def feed_jobs(self, jobs: list, fmt: str = "json") -> None:
        """Put each job's spec file (``{PandaID: params}`` JSON, or URL-encoded), the PandaID list, and
        remove the pilot's job request, in Harvester's order."""
        ids = []
        for params in jobs:
            pandaid = int(params["PandaID"])
            target = self.job_ap(pandaid)
            target.mkdir(parents=True, exist_ok=True)
            with open(target / self.job_spec_file, "w") as handle:
                if fmt == "cgi":
                    handle.write(urlencode(params))
                else:
                    json.dump({pandaid: params}, handle)
            ids.append(pandaid)
        with open(self.ap / "worker_pandaids.json", "w") as handle:
            json.dump(ids, handle)
        try:
            os.remove(self.ap / "worker_requestjob.json")
        except FileNotFoundError:
            pass

    def job_requested(self) -> Any:
        """nJobs of the pilot's request (1 when unreadable), False when there is none."""
        path = self.ap / "worker_requestjob.json"
        if not path.exists():
            return False
        try:
            return json.loads(path.read_text())["nJobs"]
        except (ValueError, KeyError):
            return 1

    def get_panda_ids(self) -> list:
        """Pull mode: the PandaIDs the pilot lists."""
        path = self.ap / "worker_pandaids.json"
        return json.loads(path.read_text()) if path.exists() else []

    # ------------------------------------------------------------ reports
    def get_work_attributes(self, pandaid: Any) -> dict:
        """worker_attributes.json of a job, with the job report as metaData when there is one."""
        ap = self.job_ap(pandaid)
        out: dict = {}
        path = ap / "worker_attributes.json"
        if path.exists():
            out = json.loads(path.read_text())
        report = ap / "jobReport.json"
        if report.exists():
            out["metaData"] = json.loads(report.read_text())
        return out

    def get_files_to_stage_out(self, pandaid: Any) -> dict:
        """The output list of a job: event_status.dump.json renamed to ``.read`` first, then read."""
        path = self.job_ap(pandaid) / "event_status.dump.json"
        read = Path(str(path) + READ)
        if not read.exists():
            if not path.exists():
                return {}
            os.rename(path, read)
        data = json.loads(read.read_text())
        out: dict = {}
        for key, items in data.items():
            for item in items:
                out.setdefault(int(key), {}).setdefault(os.path.basename(item["path"]), []).append(item)
        return out

    def kill_requested(self) -> bool:
        """True when the pilot left its kill marker."""
        return (self.ap / self.kill_worker_file).exists()

    def is_alive(self, time_limit_minutes: float) -> Optional[bool]:
        """From the heartbeat file's modification time (None when there is none)."""
        path = self.ap / "worker_heartbeat.json"
        if not path.exists():
            return None
        return time.time() - path.stat().st_mtime < time_limit_minutes * 60

    # ------------------------------------------------------------ events
    def events_requested(self) -> dict:
        """The pilot's event request ({} when none)."""
        path = self.ap / "worker_requestevents.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def feed_events(self, events: dict) -> None:
        """Write JobsEventRanges.json and remove the request."""
        with open(self.ap / "JobsEventRanges.json", "w") as handle:
            json.dump(events, handle)
        try:
            os.remove(self.ap / "worker_requestevents.json")
        except FileNotFoundError:
            pass

    def events_to_update(self, pandaid: Any) -> dict:
        """worker_updateevents.json of a job, renamed to ``.read`` first."""
        path = self.job_ap(pandaid) / "worker_updateevents.json"
        read = Path(str(path) + READ)
        if not read.exists():
            if not path.exists():
                return {}
            os.rename(path, read)
        return {int(k): v for k, v in json.loads(read.read_text()).items()}

    def acknowledge_events_files(self, pandaid: Any) -> None:
        """Move the consumed ``.read`` files aside (Harvester adds a time stamp)."""
        stamp = time.strftime("%Y-%m-%d_%H_%M_%S")
        for name in ("worker_updateevents.json", "event_status.dump.json"):
            read = self.job_ap(pandaid) / (name + READ)
            if read.exists():
                os.rename(read, Path(f"{read}.{stamp}"))


def wait_until(predicate, timeout: float = 60, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something true (tests only)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout} s")
