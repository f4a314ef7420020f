"""The PanDA server REST API (panda-server 1.0 and later): ``/api/v1/pilot/...``, ``/api/v1/event/...``
and ``/api/v1/creds/...``.

The pilot builds every request in the legacy (Pilot 2) field names, the same dictionary for every
backend; this module translates them into the REST parameters and back. The server checks the type
of each parameter against its signature (a JSON ``"7"`` where an ``int`` is expected is refused) and
refuses parameters it does not know, so only known fields are sent, each with its type.

Replies are ``{"success": bool, "message": str, "data": ...}``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any, Callable, Optional

logger = logging.getLogger(__name__)

PILOT = "api/v1/pilot"
EVENT = "api/v1/event"
CREDS = "api/v1/creds"

#: the time format of start_time and end_time
REST_TIME = "%Y-%m-%d %H:%M:%S"


def _int(value: Any) -> int:
    return int(float(value))


def _float(value: Any) -> float:
    return float(value)


def _bool(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def _str(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _number(value: Any) -> Any:
    number = float(value)
    return int(number) if number.is_integer() else number


def _rounded(value: Any) -> int:
    return int(round(float(value)))


def rest_time(value: Any) -> str:
    """An update time stamp as UTC ``%Y-%m-%d %H:%M:%S``.

    Accepted: that form itself (taken as UTC, what the pilot sends), ISO-8601 with an offset or
    epoch seconds (updates stored in the outbox by older versions).
    """
    if isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, tz=timezone.utc)
    else:
        text = str(value).strip()
        try:
            moment = datetime.fromtimestamp(float(text), tz=timezone.utc)
        except ValueError:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(REST_TIME)


#: acquire_jobs: legacy getJob field -> (REST parameter, type)
ACQUIRE_JOBS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "siteName": ("site_name", _str),
    "computingElement": ("computing_element", _str),
    "prodSourceLabel": ("prod_source_label", _str),
    "diskSpace": ("disk_space", _int),
    "mem": ("memory", _int),
    "node": ("node", _str),
    "jobType": ("job_type", _str),
    "prodUserID": ("prod_user_id", _str),
    "taskID": ("task_id", _int),
    "resourceType": ("resource_type", _str),
    "harvester_id": ("harvester_id", _str),
    "worker_id": ("worker_id", _int),
    "schedulerID": ("scheduler_id", _str),
    "nJobs": ("n_jobs", _int),
    "background": ("background", _bool),
}

_MEMORY = ("maxRSS", "maxVMEM", "maxSWAP", "maxPSS", "avgRSS", "avgVMEM", "avgSWAP", "avgPSS", "totRCHAR",
           "totWCHAR", "totRBYTES", "totWBYTES", "rateRCHAR", "rateWCHAR", "rateRBYTES", "rateWBYTES")

#: update_job: legacy updateJob field -> (REST parameter, type)
UPDATE_JOB: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "jobId": ("job_id", _int),
    "state": ("job_status", _str),
    "siteName": ("site_name", _str),
    "node": ("node", _str),
    "attemptNr": ("attempt_nr", _int),
    "schedulerID": ("scheduler_id", _str),
    "pilotID": ("pilot_id", _str),
    "batchID": ("batch_id", _str),
    "startTime": ("start_time", rest_time),
    "endTime": ("end_time", rest_time),
    "coreCount": ("core_count", _int),
    "meanCoreCount": ("mean_core_count", _rounded),  # an int in the 1.x signature
    "nEvents": ("n_events", _int),
    "nInputFiles": ("n_input_files", _int),
    "cpuConsumptionTime": ("cpu_consumption_time", _int),
    "cpuConversionFactor": ("cpu_conversion_factor", _float),
    "cpuConsumptionUnit": ("cpu_consumption_unit", _str),
    "cpuArchitectureLevel": ("cpu_architecture_level", _str),
    "jobMetrics": ("job_metrics", _str),
    "jobSubStatus": ("job_sub_status", _str),
    "stdout": ("stdout", _str),
    "pilotErrorCode": ("pilot_error_code", _int),
    "pilotErrorDiag": ("pilot_error_diag", _str),
    "transExitCode": ("trans_exit_code", _int),
    "exeErrorCode": ("exe_error_code", _int),
    "exeErrorDiag": ("exe_error_diag", _str),
    "pilotTiming": ("pilot_timing", _str),
    "pilotLog": ("pilot_log", _str),
    "xml": ("job_output_report", _str),
    "metaData": ("meta_data", _str),
    "corruptedFiles": ("corrupted_files", _str),
    **{key: (key[:3].lower() + "_" + key[3:].lower() if key.startswith(("max", "avg", "tot")) else
             "rate_" + key[4:].lower(), _number) for key in _MEMORY},
}

#: acquire_event_ranges: legacy getEventRanges field -> (REST parameter, type)
ACQUIRE_EVENT_RANGES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "pandaID": ("job_id", _int),
    "jobsetID": ("jobset_id", _int),
    "taskID": ("task_id", _int),
    "nRanges": ("n_ranges", _int),
    "scattered": ("scattered", bool),
    "segment_id": ("segment_id", _int),
}


def translate(fields: dict, table: dict, what: str) -> dict:
    """Legacy fields -> typed REST parameters; unknown fields and empty values are left out."""
    out = {}
    for key, value in fields.items():
        entry = table.get(key)
        if entry is None:
            if key not in ("timestamp",):
                logger.debug("%s: %s has no REST parameter (not sent)", what, key)
            continue
        if value is None or (value == "" and entry[1] is not _str):
            continue
        name, cast = entry
        try:
            out[name] = cast(value)
        except (TypeError, ValueError) as exc:
            logger.warning("%s: %s=%r cannot be sent as %s: %s", what, key, value, name, exc)
    return out


def acquire_jobs_params(fields: dict) -> dict:
    """The acquire_jobs parameters of a getJob field set.

    ``n_jobs`` is always sent (1 by default): servers differ in how they treat a missing one, and
    the reply then holds a ``jobs`` list, which :func:`job_from_reply` reads.
    """
    params = translate(fields, ACQUIRE_JOBS, "acquire_jobs")
    params.setdefault("n_jobs", 1)
    return params


def update_job_params(fields: dict) -> dict:
    """The update_job parameters of an updateJob field set."""
    return translate(fields, UPDATE_JOB, "update_job")


def event_range_params(fields: dict) -> dict:
    """The acquire_event_ranges parameters of a getEventRanges field set."""
    return translate(fields, ACQUIRE_EVENT_RANGES, "acquire_event_ranges")


def is_envelope(reply: Any) -> bool:
    """True for a REST reply ``{"success", "message", "data"}``."""
    return isinstance(reply, dict) and "success" in reply and ("data" in reply or "message" in reply)


def job_from_reply(reply: dict) -> Optional[dict]:
    """The job definition in an acquire_jobs reply (a single job, or the first of a bulk reply)."""
    if not reply.get("success"):
        return None
    data = reply.get("data")
    if isinstance(data, dict) and isinstance(data.get("jobs"), list):
        data = data["jobs"][0] if data["jobs"] else None
    if isinstance(data, list):
        data = data[0] if data else None
    if not isinstance(data, dict) or not data.get("PandaID"):
        return None
    if str(data.get("StatusCode", "0")) != "0":
        return None
    return data


def reply_data(reply: dict) -> dict:
    """The reply's ``data`` when it is a dict, else an empty dict."""
    data = reply.get("data")
    return data if isinstance(data, dict) else {}


def update_reply(reply: dict) -> dict:
    """An update_job reply in the legacy shape: ``{StatusCode, command, errorDialog}``."""
    data = reply_data(reply)
    out = dict(data)
    out.setdefault("StatusCode", 0 if reply.get("success") else 30)
    if not reply.get("success"):
        out["errorDialog"] = reply.get("message", "")
    out.setdefault("command", None)
    return out


def status_reply(reply: dict) -> dict:
    """A get_job_status reply in the legacy getStatus shape (``+``-joined status and attemptNr)."""
    if not reply.get("success"):
        return {"StatusCode": 30, "errorDialog": reply.get("message", "")}
    items = reply.get("data") or []
    return {"StatusCode": 0, "status": "+".join(str(i.get("status", "")) for i in items),
            "attemptNr": "+".join(str(i.get("attempt_number", 0)) for i in items)}


def proxy_reply(reply: dict) -> dict:
    """A creds/get_proxy reply (``data: {user_proxy}``) in the legacy getProxy shape."""
    data = reply_data(reply)
    if not reply.get("success") or not data.get("user_proxy"):
        return {"StatusCode": 90, "errorDialog": reply.get("message") or "no proxy in the reply"}
    return {"StatusCode": 0, "errorDialog": "", "userProxy": str(data["user_proxy"])}


def key_pair_reply(reply: dict) -> dict:
    """A creds/get_key_pair reply (``data: {public_key, private_key}``) in the legacy getKeyPair shape."""
    data = reply_data(reply)
    if not reply.get("success") or not data.get("public_key") or not data.get("private_key"):
        return {"StatusCode": 80, "errorDialog": reply.get("message") or "no key pair in the reply"}
    return {"StatusCode": 0, "errorDialog": "", "publicKey": str(data["public_key"]),
            "privateKey": str(data["private_key"])}
