"""Live streaming of the pilot log to a remote collector (Pilot 3's real-time logging).

``--use-realtime-logging`` adds :class:`RealTimeLogHandler` to the root logger; the local log
(stderr and ``pilotlog.txt``) is written exactly as without it. Each record becomes one JSON
document in the logstash style::

    {"@timestamp": "2026-11-22T03:51:59.239Z", "@version": "1", "message": "...", "level": "INFO",
     "logger": "pilot.control.job", "thread": "MainThread", "host": "wn01", "pid": 1234,
     "logname": "pilot-log", "PandaJobID": "7000", "TaskID": "1", "Harvester_WorkerID": "42"}

The target is ``--realtime-logging-server`` (else ``[Pilot] rtlogging``):

- ``host:port``, ``tcp:host:port`` or ``logstash:host:port``: JSON lines over TCP (logstash's
  ``tcp`` input with the ``json_lines`` codec, fluent-bit's ``tcp`` input, vector's ``socket``);
- ``http://host:port/path`` or ``https://...`` (also ``logstash;http://...``, the Pilot 3 config form):
  JSON arrays POSTed through the pilot's HTTP client (logstash's ``http`` input, any JSON sink).

Back-pressure. Records wait in a bounded queue (``[Pilot] realtime_logging_queue``, 10000) for a
sender thread, so a slow or absent collector never slows the pilot down. When the queue is full,
``[Pilot] realtime_logging_policy`` decides:

- ``drop`` (default): the new record is dropped and counted; in its place the collector later gets
  one record ``"N log records dropped"`` (with ``"dropped": N``) for each gap, where the gap is;
- ``block``: the logging call waits up to ``realtime_logging_block_timeout`` seconds (5) for room,
  then drops and counts as above. It slows the pilot down instead of losing records, never forever.

A collector that disappears is reconnected with back-off (0.5 s doubling to 30 s); the batch being
sent is sent again on the new connection (over HTTP it is acknowledged, so nothing is lost while the
queue holds; over TCP a batch the collector accepted just before it went away may be lost, or seen
twice). The handler's own messages and those of its sender thread go to the local log only.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Optional

from pilot.util.runner import start as start_activity

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

SENDER_THREAD = "realtime-log-sender"
BATCH = 500
MAX_BACKOFF = 30.0


@dataclass
class _Gap:
    """Records dropped at this place of the queue (sent as one notice record)."""

    count: int
    since: float


@dataclass(frozen=True)
class Target:
    """Where the records go: ``kind`` tcp (host, port) or http (url)."""

    kind: str
    host: str = ""
    port: int = 0
    url: str = ""

    def __str__(self) -> str:
        return self.url if self.kind == "http" else f"tcp://{self.host}:{self.port}"


def parse_target(text: str) -> Target:
    """The target of ``--realtime-logging-server`` / ``[Pilot] rtlogging``; ValueError when unusable."""
    value = (text or "").strip()
    if ";" in value:  # Pilot 3 config form <type>;<url>
        value = value.split(";", 1)[1].strip()
    for prefix in ("logstash:", "tcp:", "http:", "https:"):
        rest = value[len(prefix):]
        if value.lower().startswith(prefix) and rest.startswith(("http://", "https://")):
            value = rest  # logstash:http://...
            break
    if value.startswith(("http://", "https://")):
        return Target("http", url=value)
    lowered = value.lower()
    for prefix in ("logstash:", "tcp:"):
        if lowered.startswith(prefix):
            value = value[len(prefix):]
            break
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a real-time logging target: {text!r} (use host:port or an http(s) URL)")
    return Target("tcp", host=host.strip("[]"), port=int(port))


class RealTimeLogHandler(logging.Handler):
    """A logging handler that streams records to a collector from a bounded queue."""

    def __init__(self, target: Target, queue_size: int = 10000, policy: str = "drop", block_timeout: float = 5.0,
                 logname: str = "pilot-log", static: Optional[dict] = None, http: Any = None,
                 level: int = logging.INFO) -> None:
        super().__init__(level)
        self.target = target
        self.capacity = max(1, int(queue_size))
        self.policy = "block" if str(policy).lower() == "block" else "drop"
        self.block_timeout = max(0.0, float(block_timeout))
        self.logname = logname
        self.static = dict(static or {})
        self.job_info: dict = {}
        self.http = http
        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.sent = 0
        self.dropped = 0
        self.reconnects = 0
        self.connected = False
        self._sock: Optional[socket.socket] = None
        self._pending: list = []
        self._close_by = float("inf")
        self._sender = start_activity(SENDER_THREAD, self._run, stop=self._stop)

    # ------------------------------------------------------------------ producer side
    def note_update(self, fields: dict, final: bool = False) -> None:
        """Reporter listener: the job id of the update goes into every following record."""
        jobid = fields.get("jobId")
        if jobid is not None:
            self.job_info = {"PandaJobID": str(jobid)}

    def set_job(self, job: JobData) -> None:
        """Label the following records with a job (None: no job)."""
        if job is None:
            self.job_info = {}
            return
        self.job_info = {"PandaJobID": str(getattr(job, "jobid", "")), "TaskID": str(getattr(job, "taskid", ""))}

    def document(self, record: logging.LogRecord) -> dict:
        """The JSON document of one record."""
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        doc = {"@timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
            timespec="milliseconds").replace("+00:00", "Z"), "@version": "1", "message": message,
            "level": record.levelname, "logger": record.name, "thread": record.threadName,
            "host": socket.gethostname(), "pid": record.process, "logname": self.logname}
        worker = os.environ.get("HARVESTER_WORKER_ID")
        if worker:
            doc["Harvester_WorkerID"] = worker
        doc.update(self.static)
        doc.update(self.job_info)
        return doc

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == __name__ or record.threadName == SENDER_THREAD or self._stop.is_set():
            return  # the handler's own messages stay local (no feedback loop)
        try:
            doc = self.document(record)
        except Exception:  # a record that cannot be formatted is not worth a crash
            self.handleError(record)
            return
        with self._cond:
            if len(self._queue) >= self.capacity and self.policy == "block":
                deadline = time.monotonic() + self.block_timeout
                while len(self._queue) >= self.capacity and not self._stop.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            if len(self._queue) >= self.capacity:
                self.dropped += 1
                if self._queue and isinstance(self._queue[-1], _Gap):
                    self._queue[-1].count += 1
                else:  # the notice sits exactly where the records are missing
                    self._queue.append(_Gap(1, record.created))
                return
            self._queue.append(doc)
            self._cond.notify_all()

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._queue) + len(self._pending)

    # ------------------------------------------------------------------ sender side
    def _take(self) -> list:
        with self._cond:
            while not self._queue and not self._stop.is_set():
                self._cond.wait(1.0)
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            self._cond.notify_all()  # room for blocked producers
        return [self._notice(item) if isinstance(item, _Gap) else item for item in batch]

    def _notice(self, gap: _Gap) -> dict:
        """The record that stands for ``gap.count`` dropped records."""
        return dict(self.static, **{
            "@timestamp": datetime.fromtimestamp(gap.since, timezone.utc).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "@version": "1", "message": f"{gap.count} log records dropped (real-time log queue full)",
            "level": "WARNING", "logger": __name__, "host": socket.gethostname(), "pid": os.getpid(),
            "logname": self.logname, "dropped": gap.count})

    def _run(self) -> None:
        backoff = 0.5
        while True:
            if not self._pending:
                if self._stop.is_set() and not self._queue:
                    break
                self._pending = self._take()
                if not self._pending:
                    continue
            try:
                self._send(self._pending)
                with self._cond:
                    self.sent += len(self._pending)
                    self._pending = []
                    self._cond.notify_all()  # flush() waits for this
                backoff = 0.5
            except Exception as exc:  # any failure of the collector: reconnect later
                self._disconnect()
                self.reconnects += 1
                logger.debug("real-time log target %s: %s (retry in %.1f s)", self.target, exc, backoff)
                if self._stop.wait(backoff) and self._closing_deadline():
                    break
                backoff = min(MAX_BACKOFF, backoff * 2)
        self._disconnect()

    def _closing_deadline(self) -> bool:
        return time.monotonic() >= self._close_by

    def _send(self, batch: list) -> None:
        if self.target.kind == "http":
            client = self.http
            if client is None:
                from pilot.util.https import shared_client

                client = self.http = shared_client()
            client.post_json(self.target.url, batch, retries=1, timeout=20)
            self.connected = True
            return
        if self._sock is None:
            self._sock = socket.create_connection((self.target.host, self.target.port), timeout=5)
            self._sock.settimeout(20)
            self.connected = True
        data = "".join(json.dumps(doc, default=str) + "\n" for doc in batch).encode()
        self._sock.sendall(data)

    def _disconnect(self) -> None:
        self.connected = False
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # ------------------------------------------------------------------ closing
    def flush(self, timeout: float = 0.0) -> bool:  # type: ignore[override]  # logging drops the result
        """Wait up to ``timeout`` s for the queue to empty; True when everything was sent."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.queued:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (for at most ``timeout`` s), then stop the sender."""
        if not self._stop.is_set():
            self.flush(timeout)
            self._close_by = time.monotonic()
            self._stop.set()
            with self._cond:
                self._cond.notify_all()
            self._sender.join(timeout=5)
            if self.dropped or self.queued:
                logger.info("real-time logging to %s ended: %d sent, %d dropped, %d not sent", self.target,
                            self.sent, self.dropped, self.queued)
        super().close()


def active_handler(root: Optional[logging.Logger] = None) -> Optional[RealTimeLogHandler]:
    """The real-time handler on the root logger, if real-time logging is on."""
    for handler in (root or logging.getLogger()).handlers:
        if isinstance(handler, RealTimeLogHandler):
            return handler
    return None


def start(args: Any, cfg: Any = None, root: Optional[logging.Logger] = None,
          static: Optional[Callable[[], dict]] = None, http: Any = None) -> Optional[RealTimeLogHandler]:
    """Add the real-time handler when ``--use-realtime-logging`` is on; None otherwise (or on a bad target)."""
    if not getattr(args, "use_realtime_logging", False):
        return None
    if cfg is None:
        from pilot.util.config import config as cfg
    server = getattr(args, "realtime_logging_server", "") or str(cfg.Pilot.get("rtlogging", "") or "")
    try:
        target = parse_target(server)
    except ValueError as exc:
        logger.warning("real-time logging is off: %s", exc)
        return None
    handler = RealTimeLogHandler(
        target, queue_size=int(cfg.Pilot.get("realtime_logging_queue", 10000) or 10000),
        policy=str(cfg.Pilot.get("realtime_logging_policy", "drop") or "drop"),
        block_timeout=float(cfg.Pilot.get("realtime_logging_block_timeout", 5) or 5),
        logname=getattr(args, "realtime_logname", None) or "pilot-log",
        static=static() if static is not None else {"queue": getattr(args, "queue", "")}, http=http)
    (root or logging.getLogger()).addHandler(handler)
    logger.info("real-time logging to %s (queue %d, policy %s)", target, handler.capacity, handler.policy)
    return handler


def stop(handler: Optional[RealTimeLogHandler], root: Optional[logging.Logger] = None, timeout: float = 10.0) -> None:
    """Flush and remove the handler (nothing when None)."""
    if handler is None:
        return
    (root or logging.getLogger()).removeHandler(handler)
    handler.close(timeout)
