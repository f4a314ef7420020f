"""The one HTTP(S) client of the pilot: every request to the PanDA server and to other services goes here.

It owns the TLS material (CA file/dir, the X.509 proxy as client certificate), the User-Agent,
time-outs, retries with jittered exponential back-off, JSON decoding and request statistics.
Connections are kept alive per host in one pool that every thread shares: a connection is taken
for one request and put back after it, so a pilot whose calls do not overlap holds one TLS session
to its server (one handshake, one set of OpenSSL buffers), and a second one opens only while two
calls really run at once.
"""

from __future__ import annotations

import json
import logging
import os
import random
import ssl
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Optional

from pilot.common.exception import CommunicationFailure
from pilot.util.constants import PILOT_VERSION
from pilot.util.httpwire import Connection, ServerClosed

logger = logging.getLogger(__name__)

#: idle kept-alive connections kept per host; more are closed when they come back
MAX_IDLE_PER_HOST = 2

#: HTTP statuses worth a retry (the server or a proxy in front of it is busy or restarting)
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}


class HttpError(CommunicationFailure):
    """A reply with an HTTP error status."""

    def __init__(self, message: str = "", status: int = 0, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class HttpStats:
    """Counters for the benchmark and the pilot's own metrics."""

    requests: int = 0
    failures: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    per_method: dict = field(default_factory=dict)
    per_method_seconds: dict = field(default_factory=dict)  # method -> seconds spent (the pilot's metrics)
    per_method_failures: dict = field(default_factory=dict)


def user_agent() -> str:
    """``pilot/<version> (Python <ver>; <os> <arch>)``."""
    return (f"pilot/{PILOT_VERSION} (Python {sys.version.split()[0]}; "
            f"{os.uname().sysname} {os.uname().machine})")


def default_proxy_path() -> Optional[str]:
    """The X.509 proxy: ``X509_USER_PROXY``, else ``/tmp/x509up_u<uid>``, if the file exists."""
    path = os.environ.get("X509_USER_PROXY") or f"/tmp/x509up_u{os.getuid()}"
    return path if os.path.isfile(path) else None


def default_capath() -> Optional[str]:
    """``X509_CERT_DIR``, else ``/etc/grid-security/certificates``, if it exists."""
    path = os.environ.get("X509_CERT_DIR") or "/etc/grid-security/certificates"
    return path if os.path.isdir(path) else None


class HttpClient:
    """Send requests with time-outs and retries; thread-safe (kept-alive connections shared by all threads)."""

    def __init__(self, cacert: Optional[str] = None, capath: Optional[str] = None,
                 proxy: Optional[str] = None, connect_timeout: float = 100, timeout: float = 120,
                 retries: int = 3, backoff: float = 1.0, max_backoff: float = 60.0,
                 stop_event: Optional[threading.Event] = None, token: Optional[str] = None) -> None:
        self.cacert = cacert or os.environ.get("PILOT_CACERT") or None
        self.capath = capath or None
        self.proxy = proxy
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.retries = max(1, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stop_event = stop_event
        self.token = token
        self.stats = HttpStats()
        self._idle: dict = {}  # (scheme, netloc) -> idle kept-alive connections, newest last
        self._lock = threading.Lock()
        self._ssl: Optional[ssl.SSLContext] = None

    # ------------------------------------------------------------------ public calls
    def post_form(self, url: str, data: dict, timeout: Optional[float] = None,
                  retries: Optional[int] = None) -> dict:
        """POST form-encoded ``data`` and decode the JSON object in the reply."""
        # backslashreplace: a field carrying invalid text (lone surrogates) must not stop an update
        body = urllib.parse.urlencode({k: _form_value(v) for k, v in data.items()},
                                      errors="backslashreplace").encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        raw = self.request(url, body, headers=headers, timeout=timeout, retries=retries)
        return decode_json_object(raw, url)

    def post_json(self, url: str, obj: Any, timeout: Optional[float] = None,
                  retries: Optional[int] = None, compress: bool = False) -> Any:
        """POST ``obj`` as JSON; return the decoded reply (None for an empty reply)."""
        body = json.dumps(obj).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if compress:
            import gzip

            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        raw = self.request(url, body, headers=headers, timeout=timeout, retries=retries)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def get(self, url: str, timeout: Optional[float] = None, retries: Optional[int] = None) -> bytes:
        """GET ``url`` (http, https or file)."""
        if url.startswith("file://") or url.startswith("/"):
            path = url[len("file://"):] if url.startswith("file://") else url
            with open(path, "rb") as handle:
                return handle.read()
        return self.request(url, None, method="GET", timeout=timeout, retries=retries)

    def request(self, url: str, body: Optional[bytes], method: str = "POST", headers: Optional[dict] = None,
                timeout: Optional[float] = None, retries: Optional[int] = None) -> bytes:
        """Send one request with retries; return the reply body or raise CommunicationFailure."""
        attempts = retries if retries is not None else self.retries
        last: Optional[Exception] = None
        for attempt in range(1, attempts + 1):
            if attempt > 1 and not self._wait_backoff(attempt - 1):
                break
            try:
                return self._send(url, body, method, headers or {}, timeout)
            except HttpError as exc:
                last = exc
                if exc.status not in RETRY_STATUSES:
                    raise
                logger.warning("%s %s: HTTP %s (attempt %d/%d)", method, _short(url), exc.status, attempt, attempts)
            except OSError as exc:  # network failures, time-outs and broken replies (httpwire)
                last = exc
                logger.warning("%s %s: %s (attempt %d/%d)", method, _short(url), exc, attempt, attempts)
        raise CommunicationFailure(f"{method} {_short(url)} failed after {attempts} attempt(s): {last}")

    def close(self) -> None:
        """Close the idle kept-alive connections (a request still running keeps its own until it ends)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    # ------------------------------------------------------------------ internals
    def _wait_backoff(self, n: int) -> bool:
        """Sleep a jittered exponential back-off; False when the stop event was set meanwhile."""
        delay = min(self.max_backoff, self.backoff * (2 ** (n - 1)))
        delay = random.uniform(delay / 2, delay)
        if self.stop_event is not None:
            return not self.stop_event.wait(delay)
        time.sleep(delay)
        return True

    def _send(self, url: str, body: Optional[bytes], method: str, headers: dict,
              timeout: Optional[float]) -> bytes:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise CommunicationFailure(f"unsupported URL scheme in {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = {"User-Agent": user_agent(), "Connection": "keep-alive", **headers}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        start = time.monotonic()
        key = (parts.scheme, parts.netloc)
        for fresh in (False, True):
            conn, reused = self._checkout(parts, timeout, fresh)
            try:
                resp = conn.exchange(method, path, headers, body)
                data = resp.body
                break
            except (ServerClosed, BrokenPipeError, ConnectionResetError):
                # a kept-alive connection the server closed meanwhile: reconnect once
                conn.close()
                if fresh or not reused:
                    self._count(method, path, body, b"", start, failed=True)
                    raise
            except Exception:
                conn.close()
                self._count(method, path, body, b"", start, failed=True)
                raise
        if resp.getheader("Content-Encoding") == "gzip":
            import gzip

            data = gzip.decompress(data)
        if resp.getheader("Connection", "").lower() == "close" or resp.will_close:
            conn.close()
        else:
            self._checkin(key, conn)
        failed = resp.status >= 400
        self._count(method, path, body, data, start, failed)
        logger.debug("%s %s: HTTP %s, %d bytes sent, %d received, %.3f s%s", method, _short(url), resp.status,
                     len(body or b""), len(data), time.monotonic() - start, " (kept-alive)" if reused else "")
        if failed:
            raise HttpError(f"HTTP {resp.status} {resp.reason} from {_short(url)}", resp.status, data)
        return data

    def _count(self, method: str, path: str, body: Optional[bytes], data: bytes, start: float,
               failed: bool) -> None:
        name = path.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "/"
        with self._lock:
            self.stats.requests += 1
            self.stats.failures += int(failed)
            self.stats.bytes_sent += len(body or b"")
            self.stats.bytes_received += len(data)
            self.stats.seconds += time.monotonic() - start
            self.stats.per_method[name] = self.stats.per_method.get(name, 0) + 1
            seconds = self.stats.per_method_seconds
            seconds[name] = seconds.get(name, 0.0) + time.monotonic() - start
            self.stats.per_method_failures[name] = self.stats.per_method_failures.get(name, 0) + int(failed)

    def _checkout(self, parts: urllib.parse.SplitResult, timeout: Optional[float],
                  fresh: bool) -> tuple:
        """A connection for one request, ``(conn, reused)``: an idle kept-alive one, else a new one.

        The request's own time-out applies to a reused connection as well.
        """
        tmo = timeout or self.timeout
        conn = None
        if not fresh:
            with self._lock:
                idle = self._idle.get((parts.scheme, parts.netloc))
                conn = idle.pop() if idle else None
        if conn is not None and conn.sock is not None:
            conn.settimeout(tmo)
            return conn, True
        connect = min(tmo, self.connect_timeout) if self.connect_timeout else tmo
        context = self._ssl_context() if parts.scheme == "https" else None
        conn = Connection(parts.hostname or "", parts.port or (443 if context else 80), timeout=tmo,
                          context=context, connect_timeout=connect)
        conn.connect()
        return conn, False

    def _checkin(self, key: tuple, conn: Connection) -> None:
        """Put a connection whose reply was read completely back for the next request."""
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < MAX_IDLE_PER_HOST:
                idle.append(conn)
                return
        conn.close()

    def _ssl_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._ssl is None:
                cafile = self.cacert if self.cacert and os.path.isfile(self.cacert) else None
                capath = self.capath or (None if cafile else default_capath())
                ctx = ssl.create_default_context(cafile=cafile, capath=capath)
                proxy = self.proxy if self.proxy is not None else default_proxy_path()
                if proxy:
                    try:
                        ctx.load_cert_chain(proxy)
                    except (ssl.SSLError, OSError) as exc:
                        logger.warning("cannot use %s as client certificate: %s", proxy, exc)
                self._ssl = ctx
            return self._ssl


def decode_json_object(raw: bytes, url: str = "") -> dict:
    """Decode a JSON object reply; raise CommunicationFailure for anything else."""
    try:
        # invalid UTF-8 is kept (as lone surrogates) so that the caller can name the bad field
        obj = json.loads(raw.decode("utf-8", errors="surrogateescape") if isinstance(raw, bytes) else raw)
    except ValueError:
        # the legacy server may answer form-encoded key=value pairs
        try:
            text = raw.decode()
        except UnicodeDecodeError as exc:
            raise CommunicationFailure(f"undecodable reply from {_short(url)}") from exc
        pairs = urllib.parse.parse_qs(text, keep_blank_values=True, strict_parsing=False)
        if pairs and "StatusCode" in pairs:
            return {k: v[0] for k, v in pairs.items()}
        raise CommunicationFailure(f"reply from {_short(url)} is not JSON: {text[:80]!r}") from None
    if not isinstance(obj, dict):
        raise CommunicationFailure(f"reply from {_short(url)} is not a JSON object")
    return obj


def _form_value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "True" if value else "False"
    return "" if value is None else str(value)


def _short(url: str) -> str:
    return url.split("?", 1)[0]
