"""Harvester's shared-file protocol, seen from the pilot (compat reference §10).

Harvester and the pilot talk through files in the worker's *access point*: the directory given
with ``--harvester-workdir`` (the pilot main dir when that option is missing). The files (their
names are ``[Harvester]`` configuration keys):

* job definition, Harvester to pilot: ``pandaJobData.out`` or ``HPCJobs.json``, ``{PandaID: getJob
  fields}`` as JSON, or the fields URL-encoded, in the places of :meth:`HarvesterDirs.definition_paths`;
* ``worker_pandaids.json``: in PUSH mode (multi-job and HPC workers) Harvester lists the PandaIDs and
  each job file is in ``<access point>/<PandaID>/``; in PULL mode the pilot lists the PandaIDs it pulled;
* ``worker_requestjob.json``, pilot to Harvester: ``{"nJobs": 1}`` when the pilot wants a job;
* ``worker_attributes.json``, pilot to Harvester: every update, the update fields plus ``jobStatus``;
* ``event_status.dump.json``, pilot to Harvester, final: ``{PandaID: [{type, path, guid, fsize, chksum}]}``;
* ``jobReport.json``, pilot to Harvester, final: the payload's report with the logfileReports emptied;
* ``worker_heartbeat.json``, pilot to Harvester: liveness (Harvester looks at its modification time);
* ``worker_requestevents.json``, pilot to Harvester: ``{PandaID: {pandaID, jobsetID, taskID, nRanges}}``;
* ``JobsEventRanges.json``, Harvester to pilot: ``{PandaID: [event ranges]}``;
* ``worker_updateevents.json``, pilot to Harvester: ``{PandaID: [{eventRangeID, eventStatus, ...}]}``;
* ``kill_worker``, pilot to Harvester: an empty marker at pilot exit.

Per-job files (attributes, event status, job report, event updates) go to ``<access point>/<PandaID>``
when Harvester made that sub-directory (multi-job workers), else to the access point itself.
Harvester consumes what it reads by renaming it to ``*.read``; the pilot does the same with the event
ranges it takes, and deletes the job definitions it has read. Everything the pilot writes is written
to a temporary name and renamed, so Harvester never reads half a file. Harvester itself writes its
files in place: a JSON file that does not parse yet is left alone and read again at the next poll.

This module is a leaf: file places, names and formats only. The communicator backend that uses it
is :mod:`pilot.api.communicators.harvester`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Optional
from urllib.parse import parse_qsl

from pilot.util.config import config
from pilot.util.filehandling import remove_file, write_bytes_atomic
from pilot.util.timing import time_stamp

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

#: ``hv.remove(path)``: True when the file was there and is gone (the shared helper)
remove = remove_file

logger = logging.getLogger(__name__)

ENV_IDS = ("HARVESTER_ID", "HARVESTER_WORKER_ID")
READ_SUFFIX = ".read"
#: fields left out of worker_attributes.json (Harvester takes outputs from event_status.dump.json)
ATTRIBUTES_LEFT_OUT = ("xml", "inputfiles", "outputfiles")


class IncompleteFile(ValueError):
    """A file Harvester is still writing (JSON that does not parse yet)."""


# ------------------------------------------------------------------------------------------ mode
def is_harvester_mode(args: Any, environ: Optional[Mapping[str, str]] = None) -> bool:
    """Harvester mode: a Harvester option with ``-z``, or a Harvester id in the environment in PUSH mode."""
    env = os.environ if environ is None else environ
    options = any(getattr(args, name, "") for name in ("harvester_workdir", "harvester_datadir",
                                                       "harvester_eventstatusdump", "harvester_workerattributes"))
    if options and not getattr(args, "update_server", True):
        return True
    return any(name in env for name in ENV_IDS) and submit_mode(args) == "PUSH"


def submit_mode(args: Any) -> str:
    """PULL (the pilot asks the server for jobs) or PUSH (Harvester hands them over)."""
    return str(getattr(args, "harvester_submitmode", "PULL") or "PULL").upper()


# ----------------------------------------------------------------------------------------- names
def setting(*names: str, default: Any) -> Any:
    """A ``[Harvester]`` value under its Pilot 3 or Pilot 2 key: the first one that is not the default."""
    section = config.Harvester if config.has_section("Harvester") else None
    values = [section.get(name) for name in names] if section is not None else []
    for value in values:
        if value not in (None, "") and value != default:
            return value
    return next((v for v in values if v not in (None, "")), default)


@dataclass(frozen=True)
class FileNames:
    """The names of the exchanged files (from the configuration)."""

    job_request: str = "worker_requestjob.json"
    kill_worker: str = "kill_worker"
    jobs_list: str = "worker_pandaids.json"
    pandajob_file: str = "HPCJobs.json"
    pandajobdata: str = "pandaJobData.out"
    worker_attributes: str = "worker_attributes.json"
    event_status: str = "event_status.dump.json"
    heartbeat: str = "worker_heartbeat.json"
    request_events: str = "worker_requestevents.json"
    event_ranges: str = "JobsEventRanges.json"
    update_events: str = "worker_updateevents.json"
    jobreport: str = "jobReport.json"

    @classmethod
    def from_config(cls) -> "FileNames":
        """Read every name from the loaded configuration (Pilot 2 and Pilot 3 key names)."""
        d = cls()
        return cls(
            job_request=str(setting("job_request_file", default=d.job_request)),
            kill_worker=str(setting("kill_worker_file", default=d.kill_worker)),
            jobs_list=str(setting("jobs_list_file", default=d.jobs_list)),
            pandajob_file=str(setting("pandajob_file", default=d.pandajob_file)),
            pandajobdata=str(config.Pilot.get("pandajobdata", d.pandajobdata)),
            worker_attributes=str(setting("workerattributes_file", "workerattributesfile",
                                          default=d.worker_attributes)),
            event_status=str(setting("stageoutn_file", "stageoutnfile", default=d.event_status)),
            heartbeat=str(setting("heartbeat_file", default=d.heartbeat)),
            request_events=str(setting("requestevents_file", default=d.request_events)),
            event_ranges=str(setting("eventranges_file", default=d.event_ranges)),
            update_events=str(setting("updateevents_file", default=d.update_events)),
            jobreport=str(config.Payload.get("jobreport", d.jobreport)),
        )


@dataclass
class HarvesterDirs:
    """Where the exchanged files live for one pilot run."""

    access_point: str  # --harvester-workdir, else the pilot main dir
    main_dir: str  # the pilot main work dir
    launch_dir: str  # where the pilot was started (the -a directory, else the main dir)
    datadir: str = ""  # --harvester-datadir
    env_workdir: str = ""  # $HARVESTER_WORKDIR
    names: FileNames = FileNames()

    @classmethod
    def from_args(cls, args: Any, mainworkdir: str, names: Optional[FileNames] = None,
                  environ: Optional[Mapping[str, str]] = None) -> "HarvesterDirs":
        """The places for this run (``-a`` made the main dir inside the launch dir)."""
        env = os.environ if environ is None else environ
        launch = os.path.dirname(os.path.abspath(mainworkdir)) if getattr(args, "workdir", "") else mainworkdir
        launch = os.path.abspath(launch)

        def place(value: str) -> str:  # a relative option names a place below the launch dir
            return os.path.normpath(os.path.join(launch, value)) if value else ""

        return cls(access_point=place(getattr(args, "harvester_workdir", "") or "") or os.path.abspath(mainworkdir),
                   main_dir=os.path.abspath(mainworkdir), launch_dir=launch,
                   datadir=place(getattr(args, "harvester_datadir", "") or ""),
                   env_workdir=env.get("HARVESTER_WORKDIR", ""), names=names or FileNames.from_config())

    def top(self, name: str) -> str:
        """A worker-level file in the access point."""
        return os.path.join(self.access_point, name)

    def job_dir(self, pandaid: Any) -> str:
        """The access point of one job: ``<access point>/<PandaID>`` when Harvester made it."""
        sub = os.path.join(self.access_point, str(pandaid))
        return sub if pandaid not in (None, "") and os.path.isdir(sub) else self.access_point

    def job_file(self, name: str, pandaid: Any) -> str:
        """A per-job file (attributes, event status, job report, event updates)."""
        return os.path.join(self.job_dir(pandaid), name)

    def definition_paths(self, pandaids: Iterable[Any] = ()) -> list:
        """Every place a job definition may wait, in the order they are tried.

        ``pandaJobData.out`` in the data dir (only there when it is given), else in the launch dir's
        parent, the launch dir and the main dir; ``HPCJobs.json`` in the access point and in
        ``$HARVESTER_WORKDIR``; ``pandaJobData.out`` in the access point; and both names in the
        sub-directory of every PandaID Harvester listed in ``worker_pandaids.json`` (``pandaids``).
        """
        n = self.names
        if self.datadir:
            paths = [os.path.join(self.datadir, n.pandajobdata)]
        else:
            paths = [os.path.join(os.path.dirname(self.launch_dir), n.pandajobdata),
                     os.path.join(self.launch_dir, n.pandajobdata), os.path.join(self.main_dir, n.pandajobdata)]
        paths += [os.path.join(self.access_point, n.pandajob_file)]
        if self.env_workdir:
            paths.append(os.path.join(self.env_workdir, n.pandajob_file))
        paths.append(os.path.join(self.access_point, n.pandajobdata))
        for pandaid in pandaids:
            sub = os.path.join(self.access_point, str(pandaid))
            paths += [os.path.join(sub, n.pandajob_file), os.path.join(sub, n.pandajobdata)]
        return list(dict.fromkeys(os.path.normpath(p) for p in paths))


# --------------------------------------------------------------------------------- definitions
def parse_job_definitions(text: str) -> list:
    """All job definitions in a job file: a JSON map PandaID -> fields, one JSON definition, or URL-encoded.

    A JSON text that does not parse raises :class:`IncompleteFile` (Harvester may still be writing it).
    """
    text = text.strip()
    if not text:
        return []
    if text[0] in "{[":
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise IncompleteFile(f"job definition is not complete JSON: {exc}") from None
        return _definitions_from_json(obj)
    return [dict(parse_qsl(text, keep_blank_values=True))]


def _definitions_from_json(obj: Any) -> list:
    if isinstance(obj, list):
        return [d for item in obj for d in _definitions_from_json(item)]
    if not isinstance(obj, dict):
        return []
    if "PandaID" in obj or "jobPars" in obj:
        return [obj]
    out = []
    for key, value in obj.items():
        if isinstance(value, dict):
            definition = dict(value)
            definition.setdefault("PandaID", key)
            out.append(definition)
    return out


def read_job_definition(path: str, remove: bool = True) -> Optional[dict]:
    """The first job definition in ``path`` (None when it holds none); the file is removed after reading.

    Raises :class:`IncompleteFile` (and keeps the file) when its JSON does not parse yet.
    """
    with open(path, "rb") as handle:
        text = handle.read().decode(errors="replace")
    definitions = parse_job_definitions(text)
    if remove:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    if len(definitions) > 1:
        logger.warning("%s holds %d job definitions: only the first is run", path, len(definitions))
    return definitions[0] if definitions else None


def read_json_file(path: str) -> Any:
    """Read a JSON file Harvester wrote; None when absent, :class:`IncompleteFile` when it does not parse."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise IncompleteFile(f"{path}: {exc}") from None


def read_pandaids(path: str) -> list:
    """The PandaIDs listed in ``worker_pandaids.json`` ([] when absent or not readable yet)."""
    try:
        value = read_json_file(path)
    except IncompleteFile:
        return []
    if isinstance(value, dict):
        value = list(value)
    return [str(v) for v in value] if isinstance(value, list) else []


# ------------------------------------------------------------------------------------- reports
def worker_attributes(fields: Mapping[str, Any]) -> dict:
    """The ``worker_attributes.json`` content: the update fields with ``jobStatus`` and a fresh timestamp."""
    data = {k: v for k, v in fields.items() if k not in ATTRIBUTES_LEFT_OUT}
    data["jobStatus"] = fields.get("state", "")
    data["timestamp"] = time_stamp()
    return data


def checksum_value(checksum: Any) -> str:
    """The adler32 value of a FileSpec checksum (else its md5, else '')."""
    if isinstance(checksum, dict):
        return str(checksum.get("adler32") or checksum.get("md5") or "")
    return str(checksum or "")


def _local_path(url: str) -> str:
    if url.startswith("file://"):
        return url[len("file://"):]
    return url if url.startswith("/") else ""


def find_file(lfn: str, candidates: Iterable[str], search_dirs: Iterable[str] = ()) -> str:
    """The first existing candidate path, else the first file called ``lfn`` below ``search_dirs``."""
    for path in candidates:
        if path and os.path.isfile(path):
            return path
    for top in search_dirs:
        for root, _dirs, files in os.walk(top):
            if lfn in files:
                return os.path.join(root, lfn)
    return ""


def stageout_entries(job: JobData, search_dirs: Iterable[str] = ()) -> list:
    """The ``event_status.dump.json`` entries of a job: its log, and its outputs that were transferred."""
    entries = []
    files = [(f, True) for f in getattr(job, "logdata", [])] + [(f, False) for f in getattr(job, "outdata", [])]
    for spec, is_log in files:
        if not is_log and spec.status != "transferred":
            continue
        candidates = [_local_path(spec.turl or ""), _local_path(spec.surl or ""),
                      os.path.join(job.workdir, spec.lfn) if getattr(job, "workdir", "") else ""]
        path = find_file(spec.lfn, candidates, search_dirs)
        if not path:
            logger.warning("job %s: %s not found: left out of the output list", job.jobid, spec.lfn)
            continue
        entries.append({"type": "log" if is_log else (spec.filetype or "output"), "path": path,
                        "guid": spec.guid, "fsize": spec.filesize or os.path.getsize(path),
                        "chksum": checksum_value(spec.checksum)})
    return entries


def clean_job_report(report: Any) -> Any:
    """The job report Harvester keeps: each executor's ``logfileReport`` emptied."""
    if isinstance(report, dict):
        for executor in report.get("executor") or []:
            if isinstance(executor, dict) and "logfileReport" in executor:
                executor["logfileReport"] = {}
    return report


def flatten_event_updates(ranges: Any) -> list:
    """Event-range updates as single entries: version 1 groups are opened, their record kept per entry."""
    out: list = []
    for item in ranges if isinstance(ranges, list) else [ranges]:
        if not isinstance(item, dict):
            continue
        group = item.get("eventRanges")
        if isinstance(group, list):
            extra = {k: v for k, v in item.items() if k != "eventRanges"}
            out.extend({**extra, **entry} for entry in group if isinstance(entry, dict))
        else:
            out.append(dict(item))
    return out


# --------------------------------------------------------------------------------------- writes
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` atomically with the usual permissions (0666 less the umask), not the private ones
    of a temporary file: Harvester may read it as another user."""
    write_bytes_atomic(path, data, fsync=True, mode=0o666 & ~_umask())


def write_json(path: str, obj: Any) -> None:
    """Write a JSON file atomically (temporary name in the same directory, then rename)."""
    _write_atomic(path, json.dumps(obj, default=str).encode())


def write_marker(path: str) -> None:
    """Create an empty file atomically (replacing an existing one)."""
    _write_atomic(path, b"")


def consume(path: str) -> str:
    """Mark a file as read the way Harvester does (rename to ``*.read``); return the new name."""
    target = path + READ_SUFFIX
    os.replace(path, target)
    return target


def merge_json_list_map(path: str, additions: Mapping[str, list]) -> dict:
    """Add entries to a ``{key: [..]}`` JSON file that Harvester may consume (rename) at any time.

    The pilot claims an unread file by renaming it first, so an entry is never lost between the
    read and the write; the merged content is then written atomically under the real name.
    """
    claimed = f"{path}.pilot{os.getpid()}"
    merged: dict = {}
    try:
        os.rename(path, claimed)
    except FileNotFoundError:
        claimed = ""
    if claimed:
        try:
            with open(claimed) as handle:
                old = json.load(handle)
            if isinstance(old, dict):
                merged = {str(k): list(v) for k, v in old.items() if isinstance(v, list)}
        except (OSError, ValueError) as exc:
            logger.warning("unreadable %s replaced: %s", path, exc)
    for key, items in additions.items():
        merged.setdefault(str(key), []).extend(items)
    write_json(path, merged)
    if claimed:
        remove(claimed)
    return merged


def iter_existing(paths: Iterable[str]) -> Iterator[str]:
    """The paths that are files."""
    return (p for p in paths if os.path.isfile(p))
