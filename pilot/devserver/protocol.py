"""Wire-level helpers of the PanDA protocol as the development server speaks it.

Everything here is pure (no I/O, no state) so the unit tests can pin the details down:
how request bodies are decoded (form, query string, JSON, gzip-compressed JSON), how a
stored job definition becomes a getJob reply, and which job states are final.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qs

# status codes of the PanDA job dispatcher (pandaserver/jobdispatcher/Protocol.py)
SC_SUCCESS = 0
SC_TIMEOUT = 10
SC_NOJOBS = 20
SC_FAILED = 30
SC_MISSKEY = 80
SC_PROXYERROR = 90

# the job dispatcher's answer to getJob when nothing matches (JSON variant)
NO_JOBS_DIALOG = "no jobs in PanDA"

# states the dispatcher accepts in updateJob; anything else is acknowledged and ignored
ACCEPTED_STATES = frozenset({"starting", "running", "holding", "transferring", "finished", "failed"})
# the pilot's final report: the server moves the job on (to holding) and replies
# "alreadydone" to any later report of the same job
FINAL_STATES = frozenset({"finished", "failed"})
ALREADY_DONE = "alreadydone"

# key prefix of job-definition entries that stay on the server (never sent to a pilot)
PRIVATE_PREFIX = "_"

# fields the real dispatcher always puts into a getJob reply; the submitted definition overrides them
JOB_DEFAULTS: dict[str, str] = {
    "prodSourceLabel": "managed",
    "swRelease": "NULL",
    "homepackage": "NULL",
    "transformation": "",
    "jobDefinitionID": "0",
    "cloud": "NULL",
    "inFiles": "",
    "dispatchDblock": "",
    "dispatchDBlockToken": "",
    "dispatchDBlockTokenForOut": "",
    "outFiles": "",
    "destinationDblock": "",
    "destinationDBlockToken": "",
    "prodDBlocks": "",
    "prodDBlockToken": "",
    "realDatasets": "",
    "realDatasetsIn": "",
    "fileDestinationSE": "",
    "logFile": "",
    "logGUID": "",
    "jobPars": "",
    "attemptNr": "1",
    "GUID": "",
    "checksum": "",
    "fsize": "",
    "scopeIn": "",
    "scopeOut": "",
    "scopeLog": "",
    "ddmEndPointIn": "",
    "ddmEndPointOut": "",
    "destinationSE": "NULL",
    "prodUserID": "devserver",
    "maxCpuCount": "0",
    "minRamCount": "0",
    "maxDiskCount": "0",
    "cmtConfig": "NULL",
    "processingType": "NULL",
    "transferType": "NULL",
    "sourceSite": "NULL",
    "currentPriority": "1000",
    "taskID": "0",
    "coreCount": "1",
    "jobsetID": "0",
    "reqID": "0",
    "nucleus": "NULL",
    "maxWalltime": "0",
    "resource_type": "SCORE",
}


class BadRequest(ValueError):
    """A request body that cannot be decoded."""


def wire_value(value: Any) -> str:
    """Render one job-definition value the way the dispatcher's form encoding does (always a string)."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return str(value)
    return json.dumps(value)


def job_reply(definition: Mapping[str, Any], pandaid: int) -> dict[str, Any]:
    """Build the getJob reply for a stored definition: defaults, then the definition, all strings."""
    reply: dict[str, Any] = dict(JOB_DEFAULTS)
    reply["jobName"] = f"devserver.{pandaid}"
    for key, value in definition.items():
        if not key.startswith(PRIVATE_PREFIX):
            reply[key] = wire_value(value)
    reply["PandaID"] = str(pandaid)
    reply["StatusCode"] = SC_SUCCESS
    return reply


def no_jobs_reply() -> dict[str, Any]:
    """The dispatcher's JSON reply when no job is available."""
    return {"StatusCode": SC_NOJOBS, "errorDialog": NO_JOBS_DIALOG}


def _form_fields(text: str) -> dict[str, Any]:
    """Decode a query string or form body; repeated keys keep the last value unless the key ends in []."""
    fields: dict[str, Any] = {}
    for key, values in parse_qs(text, keep_blank_values=True).items():
        fields[key] = values if key.endswith("[]") else values[-1]
    return fields


def _maybe_gunzip(body: bytes, encoding: str) -> bytes:
    """Undo gzip/deflate compression, announced by a header or recognisable by the gzip magic bytes."""
    try:
        if body[:2] == b"\x1f\x8b" or "gzip" in encoding:
            return gzip.decompress(body)
        if "deflate" in encoding:
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error) as exc:
        raise BadRequest(f"cannot decompress request body: {exc}") from exc
    return body


def decode_params(query: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """Merge the query string and the body of a request into one field dictionary.

    The body may be form-encoded (Pilot 2, curl), JSON, or gzip-compressed JSON (Pilot 3 sends the
    latter with a JSON content type but without a Content-Encoding header). JSON values keep their types.
    """
    params = _form_fields(query) if query else {}
    if not body:
        return params
    lower = {key.lower(): value for key, value in headers.items()}
    raw = _maybe_gunzip(body, lower.get("content-encoding", "").lower())
    text = raw.decode("utf-8", errors="replace")
    ctype = lower.get("content-type", "").lower()
    stripped = text.lstrip()
    if "json" in ctype or stripped[:1] in ("{", "["):
        try:
            obj = json.loads(text)
        except ValueError as exc:
            if "json" in ctype:
                raise BadRequest(f"invalid JSON body: {exc}") from exc
            params.update(_form_fields(text))
            return params
        if isinstance(obj, dict):
            params.update(obj)
        else:
            params["_body"] = obj
        return params
    params.update(_form_fields(text))
    return params


def text_field(params: Mapping[str, Any], *names: str, default: str = "") -> str:
    """Return the first present field among ``names`` as a string (JSON values are rendered)."""
    for name in names:
        if name in params and params[name] is not None:
            value = params[name]
            return value if isinstance(value, str) else wire_value(value)
    return default


def int_field(params: Mapping[str, Any], *names: str, default: int = 0) -> int:
    """Return the first present field among ``names`` as an int, or ``default`` when absent or bad."""
    text = text_field(params, *names)
    try:
        return int(float(text))
    except ValueError:
        return default


def parse_json_text(value: Any) -> Any:
    """Decode a field that carries JSON text (xml, metaData, eventRanges); return it unchanged if it is not JSON."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def parse_job_metrics(value: Any) -> dict[str, str]:
    """Split a jobMetrics string (space-separated key=value pairs) into a dictionary."""
    metrics: dict[str, str] = {}
    if not isinstance(value, str):
        return metrics
    for pair in value.split():
        key, sep, val = pair.partition("=")
        if sep:
            metrics[key] = val
    return metrics


def parse_pilot_timing(value: Any) -> list[int]:
    """Split pilotTiming (``getjob|stagein|payload|stageout|setup``, P3 adds a sixth) into integers."""
    if not isinstance(value, str) or not value:
        return []
    out: list[int] = []
    for part in value.split("|"):
        try:
            out.append(int(float(part)))
        except ValueError:
            out.append(-1)
    return out


def interpret_update(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of updateJob fields with the structured ones decoded (for people and tests)."""
    out = dict(fields)
    for key in ("xml", "metaData"):
        if key in out:
            out[key] = parse_json_text(out[key])
    if "jobMetrics" in out:
        out["jobMetrics"] = parse_job_metrics(out["jobMetrics"])
    if "pilotTiming" in out:
        out["pilotTiming"] = parse_pilot_timing(out["pilotTiming"])
    return out


def flatten_range_updates(payload: Any) -> list[dict[str, Any]]:
    """Turn an updateEventRanges payload (version 0 flat list, or version 1 groups) into range entries.

    A version-1 group holds a ``zipFile`` or ``esOutput`` record plus its ``eventRanges``; each range
    entry gets the group's record attached so nothing is lost.
    """
    items: Iterable[Any] = payload if isinstance(payload, list) else [payload]
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        group = item.get("eventRanges")
        if isinstance(group, list):
            extra = {key: item[key] for key in ("zipFile", "esOutput") if key in item}
            out.extend({**entry, **extra} for entry in group if isinstance(entry, dict))
        else:
            out.append(item)
    return out
