"""ATLAS plug-in: read the transformation's ``jobReport.json`` (compat 11).

From the report: ``exitCode``/``exitMsg`` (exeErrorCode/exeErrorDiag, ``OK`` means success), the
number of processed events (``resource.transform.processedEvents``, else the largest ``nevents`` of
the executor steps), database use (``resource.dbTimeTotal``/``dbDataTotal``, else the sum over the
executors) and the error messages of the first executor's log file report.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from pilot.util.config import config

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)


def _get(report: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(report, dict) or key not in report:
            return None
        report = report[key]
    return report


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def executors(report: Any) -> Dict[str, dict]:
    """``resource.executor`` as a dict of step name -> step record ({} when absent)."""
    value = _get(report, "resource", "executor")
    return value if isinstance(value, dict) else {}


def number_of_events(report: Any) -> int:
    """Processed events: the transform's total, else the largest per-step count."""
    total = _number(_get(report, "resource", "transform", "processedEvents"))
    if total is not None and total > 0:
        return int(total)
    numbers = [_number(step.get("nevents")) for step in executors(report).values() if isinstance(step, dict)]
    counts = [c for c in numbers if c is not None]
    return int(max(counts)) if counts else 0


def db_info(report: Any) -> Dict[str, Any]:
    """``{'dbTime': seconds, 'dbData': bytes}`` (keys present only when the report has them)."""
    out: Dict[str, Any] = {}
    time_total = _number(_get(report, "resource", "dbTimeTotal"))
    data_total = _number(_get(report, "resource", "dbDataTotal"))
    steps = [s for s in executors(report).values() if isinstance(s, dict)]
    if time_total is None:
        times = [v for v in (_number(s.get("dbTime")) for s in steps) if v is not None]
        time_total = sum(times) if times else None
    if data_total is None:
        sizes = [v for v in (_number(s.get("dbData")) for s in steps) if v is not None]
        data_total = sum(sizes) if sizes else None
    if time_total:
        out["dbTime"] = round(time_total, 2)
    if data_total:
        out["dbData"] = int(data_total)
    return out


def error_messages(report: Any) -> List[str]:
    """The ERROR messages of the first executor's log file report."""
    steps = report.get("executor") if isinstance(report, dict) else None
    if not isinstance(steps, list) or not steps or not isinstance(steps[0], dict):
        return []
    details = _get(steps[0], "logfileReport", "details", "ERROR")
    if not isinstance(details, list):
        return []
    return [str(item.get("message", "")) for item in details if isinstance(item, dict)]


def output_guids(report: Any) -> Dict[str, str]:
    """``{lfn: guid}`` of the output files the report lists."""
    out: Dict[str, str] = {}
    for entry in _get(report, "files", "output") or []:
        for sub in (entry.get("subFiles") or []) if isinstance(entry, dict) else []:
            if isinstance(sub, dict) and sub.get("name") and sub.get("file_guid"):
                out[str(sub["name"])] = str(sub["file_guid"])
    return out


def parse_jobreport_data(report: Any) -> Dict[str, Any]:
    """The fields the pilot uses from a job report dictionary."""
    if not isinstance(report, dict) or not report:
        return {}
    data: Dict[str, Any] = {"nEvents": number_of_events(report)}
    data.update(db_info(report))
    if "exitCode" in report:
        data["exitCode"] = report.get("exitCode")
    if "exitMsg" in report:
        data["exitMsg"] = str(report.get("exitMsg") or "")
    cpu = _number(_get(report, "resource", "transform", "cpuTimeTotal"))
    if cpu is not None:
        data["cpuConsumptionTime"] = cpu
    data["outputGuids"] = output_guids(report)
    data["errors"] = error_messages(report)
    return data


def read_job_report(workdir: str) -> Optional[dict]:
    """The job report of a work dir as a dict (None when absent or unreadable)."""
    path = os.path.join(workdir, str(config.Payload.jobreport))
    from pilot.common.exception import PilotException
    from pilot.util.safefile import MISSING, UnsafeFile, read_checked

    try:  # the payload's file: a checked regular file in its work dir, of bounded size
        report = json.loads(read_checked(path, workdir).decode(errors="replace"))
    except UnsafeFile as exc:
        if exc.reason == MISSING:
            return None
        logger.warning("unreadable job report %s: %s", path, exc.diag)
        return None
    except (OSError, ValueError, PilotException) as exc:
        logger.warning("unreadable job report %s: %s", path, exc)
        return None
    return report if isinstance(report, dict) else None


def apply_job_report(job: JobData, report: Optional[dict] = None) -> Dict[str, Any]:
    """Copy the report's results onto the job: exe error, events, database use, output GUIDs."""
    report = report if report is not None else read_job_report(job.workdir)
    data = parse_jobreport_data(report)
    if not data:
        return {}
    try:
        exit_code = int(data.get("exitCode", 0) or 0)
    except (TypeError, ValueError):
        exit_code = 0
    job.exeerrorcode = exit_code
    message = data.get("exitMsg", "")
    job.exeerrordiag = "" if message == "OK" else message[:256]
    if data.get("nEvents"):
        job.nevents = int(data["nEvents"])
    if "dbTime" in data:
        job.dbtime = data["dbTime"]
    if "dbData" in data:
        job.dbdata = data["dbData"]
    guids = data.get("outputGuids") or {}
    for spec in job.outdata:
        if spec.lfn in guids:
            spec.guid = guids[spec.lfn]
    return data
