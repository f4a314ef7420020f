"""Rucio trace reports: one record per file transfer, POSTed as JSON to the trace URL.

The Data API fills one report per file (``clientState`` DONE, FOUND_ROOT, ``AD_MISMATCH`` ...) and
sends it with :meth:`TraceReport.send`. A report is not sent when traces are disabled
(``--use-rucio-traces false``) or when eventType, localSite or remoteSite is empty.

Pilot 2 code and Harvester use the report like a dict (``report['eventType']``, ``report.update(...)``)
and build it with keywords (``TraceReport(pq=..., localSite=..., eventType=...)``); both work here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from pilot.util.auxiliary import random_uuid
from pilot.util.filehandling import md5_hexdigest

if TYPE_CHECKING:
    from pilot.info.filespec import FileSpec
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

#: fields that are not part of the record sent to Rucio
_LOCAL_FIELDS = ("enabled", "workdir")


@dataclass
class TraceReport:
    """The fields of a Rucio trace record."""

    eventType: str = ""  # noqa: N815 (Rucio field names)
    eventVersion: str = ""  # noqa: N815
    protocol: str = ""
    clientState: str = "INIT_REPORT"  # noqa: N815
    localSite: str = ""  # noqa: N815
    remoteSite: str = ""  # noqa: N815
    timeStart: Optional[float] = None  # noqa: N815
    catStart: Optional[float] = None  # noqa: N815
    relativeStart: Optional[float] = None  # noqa: N815
    transferStart: Optional[float] = None  # noqa: N815
    validateStart: Optional[float] = None  # noqa: N815
    timeEnd: Optional[float] = None  # noqa: N815
    dataset: str = ""
    version: Optional[str] = None
    duid: Optional[str] = None
    filename: Optional[str] = None
    guid: Optional[str] = None
    filesize: Optional[int] = None
    usr: Optional[str] = None
    appid: Optional[str] = None
    hostname: str = ""
    ip: str = ""
    suspicious: str = "0"
    usrdn: str = ""
    url: Optional[str] = None
    stateReason: Optional[str] = None  # noqa: N815
    uuid: Optional[str] = None
    taskid: str = ""
    pq: str = ""
    enabled: bool = True
    workdir: str = ""

    def __post_init__(self) -> None:
        if not self.eventVersion:
            from pilot.util.constants import PILOT_VERSION
            self.eventVersion = f"pilot{PILOT_VERSION}"
        if self.timeStart is None:
            self.timeStart = time.time()
        if not self.hostname:
            self.hostname = socket.gethostname()
        if not self.ip:
            self.ip = _local_ip()
        if not self.uuid:
            self.uuid = random_uuid().replace("-", "")

    # ------------------------------------------------------------------ dict compatibility
    def __getitem__(self, key: str) -> Any:
        if key not in _FIELD_NAMES:
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in _FIELD_NAMES:
            raise KeyError(key)
        setattr(self, key, value)

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-like get."""
        return getattr(self, key, default) if key in _FIELD_NAMES else default

    def update(self, data: Optional[dict] = None, **kwargs: Any) -> None:
        """Set several fields (unknown names are ignored)."""
        for key, value in {**(data or {}), **kwargs}.items():
            if key in _FIELD_NAMES:
                setattr(self, key, value)

    def copy(self) -> "TraceReport":
        """An independent copy (one per file)."""
        return dataclasses.replace(self)

    # ------------------------------------------------------------------ content
    def init(self, job: JobData) -> None:
        """Fill the job-related fields: usrdn/usr (md5 of the DN), appid (PandaID), taskid."""
        dn = str(getattr(job, "produserid", "") or "")
        self.usrdn = dn
        self.usr = md5_hexdigest(dn.encode()) if dn else None
        self.appid = str(getattr(job, "jobid", "") or "") or None
        self.taskid = str(getattr(job, "taskid", "") or "")
        if not self.eventType:
            analysis = bool(getattr(job, "is_analysis", False))
            self.eventType = "get_sm_a" if analysis else "get_sm"

    def set_file(self, fspec: FileSpec, is_analysis: bool = False, stage: str = "get") -> None:
        """Fill the file fields from a FileSpec (eventType get_sm/put_sm, ``_a`` for analysis)."""
        self.filename = fspec.lfn
        self.scope_dataset(fspec)
        self.guid = (fspec.guid or "").replace("-", "") or None
        self.filesize = int(fspec.filesize or 0)
        self.eventType = f"{stage}_sm_a" if is_analysis else f"{stage}_sm"
        if fspec.ddmendpoint:
            self.remoteSite = fspec.ddmendpoint

    def scope_dataset(self, fspec: FileSpec) -> None:
        """Dataset name as Rucio expects it (``scope:name``-free)."""
        self.dataset = fspec.dataset or self.dataset

    def as_dict(self) -> dict:
        """The record as sent (local-only fields removed)."""
        data = dataclasses.asdict(self)
        for key in _LOCAL_FIELDS:
            data.pop(key, None)
        return data

    def verify(self) -> tuple:
        """(ok, reason): a report needs eventType, localSite and remoteSite."""
        missing = [k for k in ("eventType", "localSite", "remoteSite") if not getattr(self, k)]
        if missing:
            return False, f"missing {', '.join(missing)}"
        return True, ""

    def record(self) -> Optional[dict]:
        """The record to send, or None when traces are off or the record lacks a required field."""
        if not self.enabled or os.environ.get("PILOT_USE_RUCIO_TRACES", "").lower() in ("false", "no", "0"):
            logger.debug("trace report disabled")
            return None
        ok, reason = self.verify()
        if not ok:
            logger.info("trace report not sent: %s", reason)
            return None
        if self.timeEnd is None:
            self.timeEnd = time.time()
        return self.as_dict()

    def send(self, url: Optional[str] = None, http: Any = None) -> bool:
        """POST the record as JSON to ``url`` (default ``[Rucio] url``); True when it was sent."""
        batch = TraceBatch(url, http)
        return batch.add(self) and batch.flush() == 1


class TraceBatch:
    """The trace records of one transfer call (or of one job's stage-out), sent in one POST.

    Rucio's trace endpoint takes one record or a list of records; a batch of one is sent as the
    record itself (what every Rucio version accepts), a longer one as a list. A server that refuses
    the list (400/415/422: an old endpoint that only takes objects) gets the records one by one.
    A lost trace never fails a transfer: errors are logged, nothing is raised.
    """

    def __init__(self, url: Optional[str] = None, http: Any = None) -> None:
        self.url = url
        self.http = http
        self._records: list = []
        self._lock = threading.Lock()

    def add(self, trace: "TraceReport") -> bool:
        """Keep the trace's record for the next :meth:`flush`; False when it is not to be sent."""
        record = trace.record()
        if record is None:
            return False
        with self._lock:
            self._records.append(record)
        return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def flush(self) -> int:
        """Send what was added since the last flush; the number of records the server accepted."""
        with self._lock:
            records, self._records = self._records, []
        if not records:
            return 0
        url = self.url or _default_url()
        if not url:
            logger.debug("no trace URL configured")
            return 0
        http = self.http
        if http is None:
            from pilot.util.https import shared_client

            http = shared_client()
        if len(records) == 1 or self._post(http, url, records, quiet_refusal=True) is None:
            return sum(self._post(http, url, record) or 0 for record in records)
        logger.info("%d trace reports sent to %s in one request", len(records), url)
        return len(records)

    @staticmethod
    def _post(http: Any, url: str, body: Any, quiet_refusal: bool = False) -> Optional[int]:
        """POST one record or a list; the count sent, 0 on failure, None when a list was refused."""
        from pilot.util.https import HttpError

        try:
            http.post_json(url, body, retries=1, timeout=20)
        except HttpError as exc:
            if quiet_refusal and exc.status in (400, 415, 422):
                logger.info("the trace server refused a list of records (HTTP %s): sending them one by one",
                            exc.status)
                return None
            logger.warning("failed to send trace report to %s: %s", url, exc)
            return 0
        except Exception as exc:  # a lost trace must never fail a transfer
            logger.warning("failed to send trace report to %s: %s", url, exc)
            return 0
        if isinstance(body, dict):
            logger.info("trace report sent to %s (%s %s %s)", url, body.get("eventType"), body.get("filename"),
                        body.get("clientState"))
            return 1
        return len(body)


def job_trace(job: JobData, args: Any) -> TraceReport:
    """The trace report of one job's transfers, before any file: its queue (``pq``), whether traces are on
    (``--use-rucio-traces``), the job's user and ids. The Data API copies it per file (its ``new_trace``).
    """
    trace = TraceReport(pq=str(getattr(args, "queue", "") or ""),
                        enabled=bool(getattr(args, "use_rucio_traces", True)))
    trace.init(job)
    return trace


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(TraceReport))
_dataclass_init = TraceReport.__init__


def _tolerant_init(self: TraceReport, *args: Any, **kwargs: Any) -> None:
    """Ignore unknown keywords, as Pilot 2's dict-based report did."""
    for key in [k for k in kwargs if k not in _FIELD_NAMES]:
        kwargs.pop(key)
    _dataclass_init(self, *args, **kwargs)


TraceReport.__init__ = _tolerant_init  # type: ignore[method-assign]  # Pilot 2 callers pass unknown keys


def _default_url() -> str:
    try:
        from pilot.util.config import config
        return str(config.Rucio.url or "")
    except Exception:
        return ""


def _local_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
