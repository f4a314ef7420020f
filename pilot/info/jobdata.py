"""The Job: one PanDA job as the pilot carries it from the server to its final update.

A ``JobData`` object is built from the getJob field set (see :meth:`JobData.from_definition`). It
owns its state (``phase``, with the allowed transitions written once in ``_TRANSITIONS``), its
files, its own error list and its timing. Components pass it from queue to queue; nobody keeps a
second copy.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from pilot.common.errorcodes import ErrorCodes, JobErrors
from pilot.info.filespec import FileSpec

logger = logging.getLogger(__name__)

#: a longer LFN is refused (the storage systems' limit)
MAX_LFN_LENGTH = 255
#: checksum types the pilot verifies (``ad:``/``md:`` in the definition); any other is 1314
KNOWN_CHECKSUMS = ("adler32", "md5")


class JobPhase(str, enum.Enum):
    """Where a job is in the pilot."""

    RECEIVED = "received"
    VALIDATED = "validated"
    STAGEIN = "stagein"
    PAYLOAD = "payload"
    STAGEOUT = "stageout"
    FINISHED = "finished"
    FAILED = "failed"


_TRANSITIONS = {
    JobPhase.RECEIVED: {JobPhase.VALIDATED, JobPhase.FAILED},
    JobPhase.VALIDATED: {JobPhase.STAGEIN, JobPhase.FAILED},
    JobPhase.STAGEIN: {JobPhase.PAYLOAD, JobPhase.STAGEOUT, JobPhase.FAILED},
    JobPhase.PAYLOAD: {JobPhase.STAGEOUT, JobPhase.FAILED},
    JobPhase.STAGEOUT: {JobPhase.FINISHED, JobPhase.FAILED},
    JobPhase.FINISHED: set(),
    JobPhase.FAILED: set(),
}

#: the server state reported for each phase
_SERVER_STATE = {
    JobPhase.RECEIVED: "starting",
    JobPhase.VALIDATED: "starting",
    JobPhase.STAGEIN: "starting",
    JobPhase.PAYLOAD: "running",
    JobPhase.STAGEOUT: "running",
    JobPhase.FINISHED: "finished",
    JobPhase.FAILED: "failed",
}

_TRUE = {"true", "t", "yes", "y", "1"}

# getJob key -> (attribute, converter). Anything not listed stays only in ``job.definition``.
_SCALARS: dict[str, tuple[str, Any]] = {
    "taskID": ("taskid", str),
    "jobsetID": ("jobsetid", str),
    "jobDefinitionID": ("jobdefinitionid", str),
    "attemptNr": ("attemptnr", int),
    "transformation": ("transformation", str),
    "jobPars": ("jobparams", str),
    "homepackage": ("homepackage", str),
    "swRelease": ("swrelease", str),
    "cmtConfig": ("platform", str),
    "coreCount": ("corecount", int),
    "processingType": ("processingtype", str),
    "transferType": ("transfertype", str),
    "noExecStrCnv": ("noexecstrcnv", "bool"),
    "prodUserID": ("produserid", str),
    "prodSourceLabel": ("prodsourcelabel", str),
    "maxCpuCount": ("maxcpucount", int),
    "maxWalltime": ("maxwalltime", int),
    "maxDiskCount": ("maxdiskcount", int),
    "minRamCount": ("minramcount", int),
    "allowNoOutput": ("allownooutput", str),
    "altStageOut": ("altstageout", str),
    "nucleus": ("nucleus", str),
    "writeToFile": ("writetofile", str),
    "eventService": ("is_eventservice", "bool"),
    "eventServiceMerge": ("is_eventservicemerge", "bool"),
    "isHPO": ("is_hpo", "bool"),
    "useVP": ("use_vp", "bool"),
    "loopingCheck": ("loopingcheck", "bool_default_true"),
    "container_name": ("container_name", str),
    "imageName": ("imagename", str),
    "debug": ("debug", "bool"),
    "computingSite": ("computingsite", str),
    "jobName": ("jobname", str),
    "requestType": ("requesttype", str),
    "accessmode": ("accessmode", str),
}

_INPUT_LISTS = {
    "inFiles": "lfn", "GUID": "guid", "fsize": "filesize", "checksum": "checksum", "scopeIn": "scope",
    "realDatasetsIn": "dataset", "prodDBlockToken": "prodDBlockToken", "ddmEndPointIn": "ddmendpoint",
    "dispatchDblock": "dispatchDblock",
}
_OUTPUT_LISTS = {
    "outFiles": "lfn", "scopeOut": "scope", "realDatasets": "dataset", "ddmEndPointOut": "ddmendpoint",
    "destinationDblock": "destinationDblock", "destinationDBlockToken": "destinationDBlockToken",
}


@dataclass
class JobData:
    """One PanDA job with its files, state, errors, timing and metrics."""

    jobid: str
    definition: dict = field(default_factory=dict, repr=False)
    taskid: str = ""
    jobsetid: str = ""
    jobdefinitionid: str = ""
    attemptnr: int = 0
    transformation: str = ""
    jobparams: str = ""
    homepackage: str = ""
    swrelease: str = ""
    platform: str = ""
    corecount: int = 1
    processingtype: str = ""
    transfertype: str = ""
    noexecstrcnv: bool = False
    produserid: str = ""
    prodsourcelabel: str = ""
    maxcpucount: int = 0
    maxwalltime: int = 0
    maxdiskcount: int = 0
    minramcount: int = 0
    allownooutput: str = ""
    altstageout: str = ""  # the job's alternative stage-out wish: on, off, force ('' none)
    nucleus: str = ""  # the task's nucleus site (never an alternative destination)
    writetofile: str = ""
    is_eventservice: bool = False
    is_eventservicemerge: bool = False
    is_hpo: bool = False
    use_vp: bool = False
    loopingcheck: bool = True
    container_name: str = ""
    imagename: str = ""
    debug: bool = False
    computingsite: str = ""
    jobname: str = ""
    requesttype: str = ""
    accessmode: str = ""
    containeroptions: dict = field(default_factory=dict)
    preprocess: dict = field(default_factory=dict)
    postprocess: dict = field(default_factory=dict)
    coprocess: dict = field(default_factory=dict)

    indata: list = field(default_factory=list)
    outdata: list = field(default_factory=list)
    logdata: list = field(default_factory=list)

    # run time
    workdir: str = ""
    phase: JobPhase = JobPhase.RECEIVED
    errors: JobErrors = field(default_factory=JobErrors)
    timing: dict = field(default_factory=dict)  # phase name -> epoch seconds
    starttime: float = field(default_factory=time.time)
    endtime: Optional[float] = None
    pid: Optional[int] = None
    pgrp: Optional[int] = None
    exitcode: Optional[int] = None
    transexitcode: int = 0
    exeerrorcode: int = 0
    exeerrordiag: str = ""
    cpuconsumptiontime: Optional[float] = None
    corecounts: list = field(default_factory=list)  # actual core counts sampled while the payload ran
    cpuconversionfactor: float = 1.0
    cpuconsumptionunit: str = ""
    nevents: int = 0
    neventsw: int = 0
    dbtime: Optional[float] = None
    dbdata: Optional[int] = None
    metadata: str = ""  # raw jobReport.json text
    memory_summary: dict = field(default_factory=dict)
    extra_metrics: dict = field(default_factory=dict)  # key=value pairs added to jobMetrics
    debug_stdout: str = ""  # output of a server debug command, sent on heartbeats
    log_extracts: str = ""
    server_command: str = ""
    outputs_xml: dict = field(default_factory=dict)
    # set by the experiment plug-in when it filters jobPars (compat §4.5 special tokens)
    overwrite_queuedata: dict = field(default_factory=dict)
    overwrite_storagedata: dict = field(default_factory=dict)
    zipmap: str = ""
    alrbuserplatform: str = ""
    payload_setup: dict = field(default_factory=dict)  # the experiment's setup pieces (ATLAS: alrb, release)
    # job recovery (pilot.control.recovery)
    recovered: bool = False
    recovery_attempts: int = 0

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> str:
        """The state as the server knows it (starting, running, finished, failed)."""
        if self.phase is JobPhase.FINISHED and self.errors:
            return "failed"
        return _SERVER_STATE[self.phase]

    def advance(self, phase: JobPhase) -> None:
        """Move to ``phase`` if the transition is allowed; time-stamp it."""
        if phase == self.phase:
            return
        if phase not in _TRANSITIONS[self.phase]:
            raise ValueError(f"job {self.jobid}: illegal transition {self.phase.value} -> {phase.value}")
        self.phase = phase
        self.timing[phase.value] = time.time()
        if phase in (JobPhase.FINISHED, JobPhase.FAILED):
            self.endtime = self.endtime or time.time()

    def fail(self, code: int, diag: str = "", priority: bool = False) -> None:
        """Record an error; the job will be reported failed."""
        self.errors.add(code, diag, priority=priority)
        logger.warning("job %s: error %s: %s", self.jobid, code, diag)

    @property
    def is_analysis(self) -> bool:
        """A user analysis job (its transformation is a URL)."""
        return self.transformation.startswith(("http://", "https://"))

    @property
    def all_outputs(self) -> list:
        """Output files followed by the log file(s)."""
        return list(self.outdata) + list(self.logdata)

    # ------------------------------------------------------------------ parsing
    @classmethod
    def from_definition(cls, definition: dict) -> "JobData":
        """Build a job from the getJob field set.

        Problems of the definition are recorded as the job's errors (so the job is still reported);
        only a missing or non-numeric PandaID raises ``ValueError`` since nothing can be reported
        without it.
        """
        raw = definition.get("PandaID")
        jobid = str(raw).strip() if raw is not None else ""
        if not jobid.isdigit() or len(jobid) > 20:
            raise ValueError(f"job definition without a valid PandaID: {str(raw)[:40]!r}")
        job = cls(jobid=jobid, definition=dict(definition))
        job._check_text(definition)
        job._parse_scalars(definition)
        job._parse_dicts(definition)
        job._parse_files(definition)
        return job

    def _check_text(self, d: dict) -> None:
        """Every string of the definition must be valid text without NUL bytes."""
        for key, value in d.items():
            if not isinstance(value, str):
                continue
            if "\x00" in value:
                self.fail(ErrorCodes.CONVERSIONFAILURE, f"field {key} contains a NUL byte")
            elif any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
                self.fail(ErrorCodes.CONVERSIONFAILURE, f"field {key} is not valid UTF-8 text")

    def _parse_scalars(self, d: dict) -> None:
        for key, (attr, conv) in _SCALARS.items():
            if key not in d or d[key] is None:
                continue
            value = d[key]
            try:
                if conv == "bool":
                    setattr(self, attr, str(value).strip().lower() in _TRUE)
                elif conv == "bool_default_true":
                    setattr(self, attr, str(value).strip().lower() not in {"false", "f", "no", "n", "0"})
                elif conv is int:
                    text = str(value).strip()
                    setattr(self, attr, int(text) if text and text.upper() != "NULL" else getattr(self, attr))
                    if abs(getattr(self, attr)) > 2 ** 53:
                        raise ValueError("number out of range")
                else:
                    text = value if isinstance(value, str) else str(value)
                    setattr(self, attr, "" if text == "NULL" else text)
            except (TypeError, ValueError) as exc:
                self.fail(ErrorCodes.CONVERSIONFAILURE, f"bad value for {key}: {str(value)[:60]!r} ({exc})")
        if self.corecount < 1:
            self.corecount = 1

    def _parse_dicts(self, d: dict) -> None:
        import json

        for key, attr in (("containerOptions", "containeroptions"), ("preprocess", "preprocess"),
                          ("postprocess", "postprocess"), ("coprocess", "coprocess")):
            value = d.get(key)
            if not value or value == "NULL":
                continue
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    self.fail(ErrorCodes.CONVERSIONFAILURE, f"{key} is not JSON: {value[:60]!r}")
                    continue
            if not isinstance(value, dict):
                self.fail(ErrorCodes.CONVERSIONFAILURE, f"{key} is not an object")
                continue
            setattr(self, attr, value)

    def _parse_files(self, d: dict) -> None:
        logname = str(d.get("logFile") or "").strip()
        inputs = _split_lists(d, _INPUT_LISTS)
        outputs = _split_lists(d, _OUTPUT_LISTS)
        # the server may leave the log file out of the per-output lists (its scope is scopeLog)
        outputs = _align_without_log(outputs, logname)
        for name, lists in (("input", inputs), ("output", outputs)):
            key = "inFiles" if name == "input" else "outFiles"
            expected = len(lists.get(key, []))
            uneven = {k: len(v) for k, v in lists.items() if v and len(v) != expected}
            if uneven:
                self.fail(ErrorCodes.NOTSAMELENGTH,
                          f"{name} file lists of unequal length: {key}={expected}, "
                          + ", ".join(f"{k}={n}" for k, n in sorted(uneven.items())))
                return
        self.indata = [self._make_file(rec, "input") for rec in _records(inputs, _INPUT_LISTS, "inFiles")
                       if rec["lfn"] and rec["lfn"] != "NULL"]
        for rec in _records(outputs, _OUTPUT_LISTS, "outFiles"):
            if not rec["lfn"] or rec["lfn"] == "NULL":
                continue
            if rec["lfn"] == logname:
                rec["guid"] = str(d.get("logGUID") or "")
                rec["scope"] = str(d.get("scopeLog") or rec.get("scope") or "")
                self.logdata.append(self._make_file(rec, "log"))
            else:
                self.outdata.append(self._make_file(rec, "output"))
        if logname and not self.logdata:
            rec = {"lfn": logname, "guid": str(d.get("logGUID") or ""), "scope": str(d.get("scopeLog") or "")}
            self.logdata.append(self._make_file(rec, "log"))
        self._check_duplicates()

    def _check_duplicates(self) -> None:
        """Two files of one kind with the same name would be one file in the work dir: 1302."""
        for kind, specs in (("input", self.indata), ("output", self.outdata + self.logdata)):
            names = [spec.lfn for spec in specs]
            twice = sorted({name for name in names if names.count(name) > 1})
            if twice:
                self.fail(ErrorCodes.CONVERSIONFAILURE,
                          f"duplicate {kind} file name(s) in the job definition: {', '.join(twice)[:200]}")

    def _make_file(self, rec: dict, filetype: str) -> FileSpec:
        spec = FileSpec.from_kwargs(filetype=filetype, **rec)
        # the space token: prodDBlockToken of an input, destinationDBlockToken of an output ('NULL' = none)
        token = spec.prodDBlockToken if filetype == "input" else spec.destinationDBlockToken
        if not spec.storage_token and token and token.upper() != "NULL":
            spec.storage_token = token
        problem = lfn_problem(spec.lfn) or scope_problem(spec.scope)
        if problem:
            code = ErrorCodes.LFNTOOLONG if "long" in problem else (
                ErrorCodes.BADOUTPUTFILENAME if filetype != "input" else ErrorCodes.STAGEINFAILED)
            self.fail(code, f"illegal {filetype} file name {spec.lfn[:80]!r}: {problem}")
        unknown = sorted(kind for kind in spec.checksum if kind not in KNOWN_CHECKSUMS)
        if unknown:
            self.fail(ErrorCodes.UNKNOWNCHECKSUMTYPE,
                      f"unknown checksum type {unknown[0][:20]!r} for {spec.lfn[:80]} (known: ad, md)")
        size = str(rec.get("filesize") if rec.get("filesize") is not None else "").strip()
        if size not in ("", "NULL") and (not size.isdigit() or len(size) > 16):
            self.fail(ErrorCodes.CONVERSIONFAILURE, f"bad file size {size[:40]!r} for {spec.lfn[:80]}")
        if filetype == "input" and self.accessmode == "copy":
            spec.accessmode = "copy"
        return spec

    # ------------------------------------------------------------------ Pilot 2 call shapes
    def prepare_infiles(self, data: dict) -> list:
        """FileSpec objects of the input files described by the getJob fields in ``data`` (Pilot 2 name)."""
        return self._files_of(data)[0]

    def prepare_outfiles(self, data: dict) -> tuple:
        """(output FileSpecs, log FileSpecs) described by the getJob fields in ``data`` (Pilot 2 name)."""
        _, outdata, logdata = self._files_of(data)
        return outdata, logdata

    def _files_of(self, data: dict) -> tuple:
        scratch = JobData(jobid=self.jobid, accessmode=self.accessmode)
        scratch._parse_files(dict(data or {}))
        for code, diag in scratch.errors.entries():
            logger.warning("job %s: %s (error %s)", self.jobid, diag, code)
        return scratch.indata, scratch.outdata, scratch.logdata

    def __repr__(self) -> str:
        return f"JobData(jobid={self.jobid}, phase={self.phase.value}, errors={self.errors.codes})"


def _accept_definition(init: Any) -> Any:
    """Let ``JobData(definition)`` (Pilot 2's call shape, also ``JobData(data=...)`` and ``use_kmap``)
    parse a getJob field set like :meth:`JobData.from_definition`; field arguments work as before."""

    @functools.wraps(init)
    def __init__(self: "JobData", *args: Any, use_kmap: bool = True, **kwargs: Any) -> None:
        definition = args[0] if len(args) == 1 and isinstance(args[0], dict) and not kwargs else kwargs.get("data")
        if isinstance(definition, dict) and (args or list(kwargs) == ["data"]):
            self.__dict__.update(type(self).from_definition(definition).__dict__)
            return
        init(self, *args, **kwargs)

    return __init__


JobData.__init__ = _accept_definition(JobData.__init__)  # type: ignore[method-assign]  # JobData(definition)


def lfn_problem(lfn: str) -> str:
    """Return why an LFN is unsafe as a file name in the work dir, or '' when it is fine."""
    if len(lfn) > MAX_LFN_LENGTH:
        return f"too long ({len(lfn)} > {MAX_LFN_LENGTH} characters)"
    if "\x00" in lfn:
        return "contains a NUL byte"
    if lfn.startswith("/") or lfn.startswith("~"):
        return "absolute path"
    if "/" in lfn or "\\" in lfn:
        return "contains a path separator"
    if lfn in (".", ".."):
        return "not a file name"
    if any(ord(c) < 32 for c in lfn):
        return "contains control characters"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in lfn):
        return "not valid UTF-8"
    if any(c in lfn for c in "`$;|&<>\"'*?!{}"):
        return "contains shell metacharacters"
    return ""


def scope_problem(scope: str) -> str:
    """Return why a scope is unsafe (it becomes part of a storage path), or '' when it is fine."""
    if not scope:
        return ""
    if len(scope) > MAX_LFN_LENGTH:
        return "scope too long"
    if not all(ch.isalnum() or ch in "._-" for ch in scope) or ".." in scope or scope.startswith("."):
        return f"illegal scope {scope[:60]!r}"
    return ""


def _split_lists(d: dict, keys: dict) -> dict:
    """Split the comma-separated server fields named in ``keys``."""
    out: dict = {}
    for key in keys:
        value = d.get(key)
        if value in (None, "", "NULL"):
            out[key] = []
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        else:
            out[key] = [v.strip() for v in str(value).split(",")]
    return out


def _align_without_log(lists: dict, logname: str) -> dict:
    """Pad lists that skip the log file entry so that they align with ``outFiles`` again."""
    names = lists.get("outFiles", [])
    if not logname or logname not in names:
        return lists
    index = names.index(logname)
    out = {}
    for key, values in lists.items():
        if key != "outFiles" and values and len(values) == len(names) - 1:
            values = values[:index] + [""] + values[index:]
        out[key] = values
    return out


def _records(lists: dict, keys: dict, main: str) -> list:
    """Zip index-aligned lists into dicts keyed by FileSpec attribute names."""
    records = []
    for i in range(len(lists.get(main, []))):
        rec = {}
        for key, attr in keys.items():
            values = lists.get(key) or []
            if i < len(values) and values[i] not in ("", "NULL"):
                rec[attr] = values[i]
        rec.setdefault("lfn", "")
        records.append(rec)
    return records


def job_workdir(main_workdir: str, jobid: str) -> str:
    """The work dir of a job inside the pilot's main work dir."""
    return os.path.join(main_workdir, f"PanDA_Pilot-{jobid}")
