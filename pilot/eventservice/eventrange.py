"""Event ranges on the wire: the payload's messages and the updateEventRanges records (compat §12).

Payload -> pilot messages:

* ``<path>,ID:<rangeID>,CPU:<n>,WALL:<n>``: the range is done, its output is ``<path>``;
* ``ERR_<KIND> <rangeID>: <text>``: the range failed (``fatal`` when the kind contains ``FATAL``,
  i.e. it must not be retried; ``failed`` otherwise);
* ``ERR_ATHENAMP_PARSE "<range>": <text>``: AthenaMP could not parse the range; the id is taken
  from the quoted range.

Update records: version 1 for finished ranges (a ``zipFile`` or ``esOutput`` record with the ranges
it holds), version 0 for failed and fatal ones (errorCode 1220).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import MessageFailure

#: pathConvention of premerge tarballs on the event storage
PATH_CONVENTION = 1000
FINISHED, FAILED, FATAL = "finished", "failed", "fatal"

_OUTPUT = re.compile(r"^(?P<output>.+?),ID:(?P<id>[^,\s]+)(?P<rest>(?:,[A-Za-z_]+:[^,]*)*)\s*$")
_ERROR = re.compile(r"^(?P<kind>ERR_[A-Z0-9_]+)\s+(?P<id>[^\s:]+)\s*:\s?(?P<text>.*)$", re.DOTALL)
_PARSE_ERROR = re.compile(r"^(?P<kind>ERR_ATHENAMP_PARSE)\s+(?P<range>.+?):\s?(?P<text>[^:]*)$", re.DOTALL)
_RANGE_ID_IN_TEXT = re.compile(r"""eventRangeID['"]?\s*:\s*['"]?(?P<id>[^'",}\s]+)""")


def parse_out_message(message: str) -> dict:
    """Parse an output or error message of the payload.

    Returns ``{'id', 'status': 'finished', 'output', 'cpu', 'wall', 'message'}`` for an output report
    and ``{'id', 'status': 'failed'|'fatal', 'kind', 'message'}`` for an error; raises
    ``MessageFailure`` (1240) for anything else.
    """
    text = str(message).strip()
    if text.startswith("ERR"):
        return _parse_error(text)
    found = _OUTPUT.match(text)
    if not found:
        raise MessageFailure(f"unknown message from the payload: {text[:200]!r}")
    ret: dict = {"id": found["id"], "status": FINISHED, "output": found["output"], "message": text}
    for part in found["rest"].split(",")[1:]:
        name, _, value = part.partition(":")
        ret[name.lower()] = value
    return ret


def _parse_error(text: str) -> dict:
    if text.startswith("ERR_ATHENAMP_PARSE"):
        found = _PARSE_ERROR.match(text)
        inner = _RANGE_ID_IN_TEXT.search(found["range"]) if found else None
        if inner is None:
            raise MessageFailure(f"cannot find the event range in {text[:200]!r}")
        return {"id": inner["id"], "status": FAILED, "kind": "ERR_ATHENAMP_PARSE", "message": text}
    found = _ERROR.match(text)
    if not found:
        raise MessageFailure(f"cannot parse the error message {text[:200]!r}")
    kind = found["kind"]
    return {"id": found["id"], "status": FATAL if "FATAL" in kind else FAILED, "kind": kind, "message": text}


def range_events(event_range: Optional[dict]) -> int:
    """Number of events in a range (1 when its bounds are unknown)."""
    if not event_range:
        return 1
    try:
        return max(1, int(event_range["lastEvent"]) - int(event_range["startEvent"]) + 1)
    except (KeyError, TypeError, ValueError):
        return 1


def zip_update(range_ids: Iterable[str], lfn: str, fsize: int, checksum: dict, storage_id: Any) -> list:
    """Version-1 update: finished ranges whose outputs are packed in one premerge tarball on storage."""
    ids = list(range_ids)
    record: dict = {"numEvents": len(ids), "objstoreID": storage_id, "lfn": lfn, "fsize": fsize,
                    "pathConvention": PATH_CONVENTION}
    record.update({kind: value for kind, value in (checksum or {}).items() if value})
    return [{"zipFile": record, "eventRanges": [{"eventRangeID": rid, "eventStatus": FINISHED} for rid in ids]}]


def esoutput_update(outputs: Iterable[dict]) -> list:
    """Version-1 update: finished ranges staged out one file each (``{id, pfn, fsize, adler32}`` per output)."""
    entries = []
    for out in outputs:
        entry = {"eventRangeID": out["id"], "eventStatus": FINISHED, "pfn": out.get("pfn", ""),
                 "fsize": out.get("fsize", 0)}
        if out.get("adler32"):
            entry["adler32"] = out["adler32"]
        entries.append(entry)
    return [{"esOutput": {"numEvents": len(entries)}, "eventRanges": entries}] if entries else []


def failed_update(messages: Iterable[dict]) -> list:
    """Version-0 update: failed or fatal ranges."""
    out = []
    for msg in messages:
        status = msg.get("status") if msg.get("status") in (FAILED, FATAL) else FAILED
        out.append({"eventRangeID": msg["id"], "eventStatus": status, "errorCode": ErrorCodes.UNKNOWNPAYLOADFAILURE})
    return out
