"""The one HTTP(S) client of the pilot: every request to the PanDA server and to other services goes here.

The wire is the standard library's ``http.client`` (adapted in :mod:`pilot.util.httpconn`: a total
deadline per request, strict length checks, size caps on the body and its decoding, proxies).
This module is the policy on top: TLS material (CA file/dir, the X.509 proxy as client
certificate), the bearer token, the User-Agent, retries with jittered exponential back-off that
yield to the stop event, keep-alive pooling, JSON decoding and request statistics.

One instance serves the whole pilot: ``pilot.main`` builds it from the options with
:func:`client_from_args` before it changes directory and registers it with
:func:`set_shared_client`; the info service, the communicators, trace reports, the real-time log
and downloads all use it (:func:`shared_client`).

Calls that hand out work (getJob, event ranges) pass ``resend=False``: such a request is repeated
only after a failure that shows the server cannot have seen it (connection refused, TLS failure,
a failure while it was being sent) or a reply that asks for a retry (429, 503), never after it
was written and the reply did not come.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from pilot.common.exception import CommunicationFailure
from pilot.util import httpconn as hc
from pilot.util.constants import PILOT_VERSION
from pilot.util.httpbuild import (  # noqa: F401 (part of this module's interface)
    DEFAULT_MAX_DECODED_SIZE, DEFAULT_MAX_REPLY_SIZE, DEFAULT_STOP_MAXTIME, BearerToken, HttpSetupError,
    client_from_args, client_from_config,
)

logger = logging.getLogger(__name__)

#: idle kept-alive connections kept per host; more are closed when they come back
MAX_IDLE_PER_HOST = 2
#: HTTP statuses worth a retry (the server or a proxy in front of it is busy or restarting)
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
#: statuses that say the request was not processed: the only ones a ``resend=False`` call retries
RETRY_UNPROCESSED_STATUSES = {429, 503}
#: HTTP statuses after which asking again cannot help (the endpoint is not there)
PERMANENT_STATUSES = {404}


class HttpError(CommunicationFailure):
    """A reply with an HTTP error status."""

    kind = "http"

    def __init__(self, message: str = "", status: int = 0, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.permanent = status in PERMANENT_STATUSES
        self.written = True


class RequestFailure(CommunicationFailure):
    """A request that got no usable reply.

    ``kind``: unreachable, tls, timeout, framing, proxy, scheme or network; ``permanent``: asking
    again cannot help (TLS verification failure, unsupported scheme); ``written``: the request had
    been sent completely (the server may have acted on it).
    """

    def __init__(self, message: str, kind: str = "network", permanent: bool = False, written: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.permanent = permanent
        self.written = written


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
    replies: int = 0  # requests that got an HTTP status line back (any status)


@dataclass
class _HostState:
    """What one endpoint (URL without query) did: a good reply (< 400) ever, the last failure."""

    answered: bool = False
    last_failure: str = ""
    when: float = 0.0


def user_agent() -> str:
    """``pilot/<version> (Python <ver>; <os> <arch>)``."""
    return (f"pilot/{PILOT_VERSION} (Python {sys.version.split()[0]}; "
            f"{os.uname().sysname} {os.uname().machine})")


def client_certificate() -> Optional[str]:
    """The X.509 proxy (:func:`pilot.util.proxy.default_proxy_path`) as an absolute path, if the file exists."""
    from pilot.util.proxy import default_proxy_path

    path = default_proxy_path()
    return os.path.abspath(path) if os.path.isfile(path) else None


def default_capath() -> Optional[str]:
    """``X509_CERT_DIR``, else ``/etc/grid-security/certificates``, if it exists."""
    path = os.environ.get("X509_CERT_DIR") or "/etc/grid-security/certificates"
    return os.path.abspath(path) if os.path.isdir(path) else None


class HttpClient:
    """Send requests with a deadline, size caps and retries; thread-safe (kept-alive connections shared)."""

    def __init__(self, cacert: Optional[str] = None, capath: Optional[str] = None,
                 proxy: Optional[str] = None, connect_timeout: float = 100, timeout: float = 120,
                 retries: int = 3, backoff: float = 1.0, max_backoff: float = 60.0,
                 stop_event: Optional[threading.Event] = None, token: Optional[str] = None, *,
                 max_reply_size: int = DEFAULT_MAX_REPLY_SIZE, max_decoded_size: int = DEFAULT_MAX_DECODED_SIZE,
                 stop_maxtime: float = DEFAULT_STOP_MAXTIME, proxies: Optional[hc.ProxySettings] = None,
                 bearer: Optional[BearerToken] = None) -> None:
        self.cacert = cacert or os.environ.get("PILOT_CACERT") or None
        self.capath = capath or None
        self.proxy = proxy  # the X.509 proxy (client certificate); HTTP proxies are ``proxies``
        self.connect_timeout = connect_timeout
        self.timeout = timeout  # the total time of one request (Pilot 2: curl --max-time)
        self.retries = max(1, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stop_event = stop_event
        self.max_reply_size = max_reply_size
        self.max_decoded_size = max_decoded_size
        self.stop_maxtime = stop_maxtime
        self.proxies = proxies if proxies is not None else hc.ProxySettings.from_environ(strict=False)
        self.bearer = bearer if bearer is not None else (BearerToken(value=token) if token else None)
        self.stats = HttpStats()
        self._idle: dict = {}  # (scheme, netloc) -> idle kept-alive connections, newest last
        self._hosts: dict = {}  # endpoint URL (no query) -> _HostState
        self._lock = threading.Lock()
        self._ssl: Optional[ssl.SSLContext] = None
        self._never = threading.Event()  # waited on when no stop event is given (never set)

    @property
    def token(self) -> Optional[str]:
        """The bearer token currently sent (None without one)."""
        return (self.bearer._current() or None) if self.bearer is not None else None

    # ------------------------------------------------------------------ public calls
    def post_form(self, url: str, data: dict, timeout: Optional[float] = None,
                  retries: Optional[int] = None, resend: bool = True) -> dict:
        """POST form-encoded ``data`` and decode the JSON object in the reply."""
        # backslashreplace: a field carrying invalid text (lone surrogates) must not stop an update
        body = urllib.parse.urlencode({k: _form_value(v) for k, v in data.items()},
                                      errors="backslashreplace").encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        raw = self.request(url, body, headers=headers, timeout=timeout, retries=retries, resend=resend)
        return decode_json_object(raw, url)

    def post_json(self, url: str, obj: Any, timeout: Optional[float] = None,
                  retries: Optional[int] = None, compress: bool = False, resend: bool = True) -> Any:
        """POST ``obj`` as JSON; return the decoded reply (None for an empty reply)."""
        body = json.dumps(obj).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if compress:
            import gzip

            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        raw = self.request(url, body, headers=headers, timeout=timeout, retries=retries, resend=resend)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def get(self, url: str, timeout: Optional[float] = None, retries: Optional[int] = None) -> bytes:
        """GET ``url`` (http, https or file; a file is read up to the reply size cap)."""
        if url.startswith("file://") or url.startswith("/"):
            path = url[len("file://"):] if url.startswith("file://") else url
            with open(path, "rb") as handle:
                data = handle.read(self.max_reply_size + 1)
            if len(data) > self.max_reply_size:
                raise hc.ReplyTooLarge(f"{path} is larger than {self.max_reply_size} bytes")
            return data
        return self.request(url, None, method="GET", timeout=timeout, retries=retries)

    def download(self, url: str, path: str, timeout: Optional[float] = None, retries: Optional[int] = None,
                 max_size: Optional[int] = None) -> int:
        """GET ``url`` into the file ``path`` (written next to it, then renamed); the number of bytes.

        ``max_size`` caps the decoded file (below the client's own caps); more is ReplyTooLarge.
        """
        part = f"{path}.part"
        handles: list = []
        written = [0]
        cap = max_size if max_size is not None else self.max_decoded_size

        def restart() -> None:  # each attempt writes the file from its start (never through a link)
            while handles:
                handles.pop().close()
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            handles.append(os.fdopen(fd, "wb"))
            written[0] = 0

        def sink(data: bytes) -> None:
            written[0] += len(data)
            if written[0] > cap:
                raise hc.ReplyTooLarge(f"{_short(url)} is larger than {cap} bytes")
            handles[0].write(data)

        try:
            self._request(url, None, "GET", {}, timeout, retries, True, sink=sink, before=restart)
            handles.pop().close()
            os.replace(part, path)
        except BaseException:
            while handles:
                handles.pop().close()
            if os.path.lexists(part):
                os.unlink(part)
            raise
        return os.path.getsize(path)

    def request(self, url: str, body: Optional[bytes], method: str = "POST", headers: Optional[dict] = None,
                timeout: Optional[float] = None, retries: Optional[int] = None, resend: bool = True) -> bytes:
        """Send one request with retries; return the reply body or raise CommunicationFailure."""
        return self._request(url, body, method, headers or {}, timeout, retries, resend)

    def close(self) -> None:
        """Close the idle kept-alive connections (a request still running keeps its own until it ends)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def never_answered(self, *prefixes: str) -> Optional[str]:
        """Why no endpoint below the URL ``prefixes`` ever gave a good reply (the last failure, one
        line), or None when one did or none was asked."""
        with self._lock:
            states = [s for url, s in self._hosts.items() if url.startswith(prefixes)]
        if not states or any(s.answered for s in states):
            return None
        return max(states, key=lambda s: s.when).last_failure or None

    # ------------------------------------------------------------------ retries
    def _request(self, url: str, body: Optional[bytes], method: str, headers: dict, timeout: Optional[float],
                 retries: Optional[int], resend: bool, sink: Optional[Callable[[bytes], None]] = None,
                 before: Optional[Callable[[], None]] = None) -> bytes:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            exc = RequestFailure(f"unsupported URL {url!r} (use http:// or https://)", "scheme", permanent=True)
            self._note_failure(parts, exc)
            raise exc
        attempts = retries if retries is not None else self.retries
        last: Optional[BaseException] = None
        tried = 0
        for attempt in range(1, max(1, attempts) + 1):
            if attempt > 1 and not self._wait_backoff(attempt - 1):
                break
            tried = attempt
            if before is not None:
                before()
            try:
                return self._send(parts, body, method, headers, timeout, sink, resend)
            except RequestFailure as exc:  # cannot be sent at all (a CA file gone, an unusable proxy)
                self._note_failure(parts, exc)
                raise
            except HttpError as exc:
                last = exc
                allowed = RETRY_STATUSES if resend else RETRY_UNPROCESSED_STATUSES
                if exc.status not in allowed:
                    raise
                logger.warning("%s %s: HTTP %s (attempt %d/%d)", method, _short(url), exc.status, attempt, attempts)
            except OSError as exc:  # network failures, deadlines, broken replies (pilot.util.httpconn)
                last = exc
                failure = _failure(exc, method, url)
                self._note_failure(parts, failure)
                if failure.permanent:
                    raise failure from exc
                if failure.written and not resend:
                    raise RequestFailure(f"{failure.diag} (not sent again: the server may have acted on it)",
                                         failure.kind, written=True) from exc
                logger.warning("%s %s: %s (attempt %d/%d)", method, _short(url), exc, attempt, attempts)
        kind = last.kind if isinstance(last, (RequestFailure, HttpError)) else (
            _failure(last, method, url).kind if isinstance(last, OSError) else "network")
        written = bool(getattr(last, "written", False) or getattr(last, "pilot_written", False))
        why = getattr(last, "diag", "") or last
        raise RequestFailure(f"{method} {_short(url)} failed after {tried} attempt(s): {why}", kind,
                             written=written) from last

    def _wait_backoff(self, n: int) -> bool:
        """Wait a jittered exponential back-off; False when the stop event is (or gets) set."""
        delay = min(self.max_backoff, self.backoff * (2 ** (n - 1)))
        delay = random.uniform(delay / 2, delay)
        return not (self.stop_event or self._never).wait(delay)

    # ------------------------------------------------------------------ one exchange
    def _send(self, parts: urllib.parse.SplitResult, body: Optional[bytes], method: str, headers: dict,
              timeout: Optional[float], sink: Optional[Callable[[bytes], None]], resend: bool = True) -> bytes:
        seconds = timeout or self.timeout
        if self.stop_event is not None and self.stop_event.is_set():
            seconds = min(seconds, self.stop_maxtime)  # stopping: one short try (the final update)
        deadline = hc.Deadline(seconds)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        proxy = self.proxies.for_target(parts.scheme, host, port)
        names = {k.lower() for k in headers}
        hdrs = {"User-Agent": user_agent(), **headers}
        if self.bearer is not None:
            hdrs.update({k: v for k, v in self.bearer.headers(host).items() if k.lower() not in names})
        if proxy is not None and parts.scheme == "http":
            target = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))
            if proxy.authorization:
                hdrs["Proxy-Authorization"] = proxy.authorization
        start = time.monotonic()
        key = (parts.scheme, host.lower(), port)
        for fresh in (False, True):
            conn, reused = self._checkout(key, proxy, deadline, fresh)
            written = False
            try:
                try:
                    conn.begin_request(deadline)
                    if conn.sock is None:
                        conn.connect()
                        conn.begin_request(deadline)  # the new socket's send time-out
                    conn.request(method, target, body=body, headers=hdrs)
                    written = True
                    resp = conn.getresponse()
                    with self._lock:
                        self.stats.replies += 1
                    hc.check_framing(resp, self.max_reply_size)
                    failed = resp.status >= 400
                    data, wire = hc.read_body(resp, self.max_reply_size, self.max_decoded_size,
                                              None if failed else sink)
                    break
                except http.client.HTTPException as exc:
                    raise _translate(exc) from None
            except (hc.ServerClosed, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                # a kept-alive connection the server closed meanwhile: once more on a new connection
                # (the request did not reach a server that had closed the connection already), except
                # a call that hands out work and was written: that one is never sent twice
                if not reused or fresh or (written and not resend):
                    exc.pilot_written = written  # type: ignore[union-attr]  # read by the caller's retry
                    self._count(method, parts.path, body, b"", start, failed=True)
                    raise
            except BaseException as exc:
                conn.close()
                if isinstance(exc, OSError):
                    exc.pilot_written = written  # type: ignore[attr-defined]  # read by the caller's retry
                self._count(method, parts.path, body, b"", start, failed=True)
                raise
        if resp.will_close or resp.getheader("Connection", "").lower() == "close":
            conn.close()
        else:
            self._checkin(key, conn)
        self._count(method, parts.path, body, data, start, failed, wire)
        logger.debug("%s %s: HTTP %s, %d bytes sent, %d received, %.3f s%s", method, _short(parts.geturl()),
                     resp.status, len(body or b""), len(data), time.monotonic() - start,
                     " (kept-alive)" if reused else "")
        if failed:
            error = HttpError(f"HTTP {resp.status} {resp.reason} from {_short(parts.geturl())}", resp.status, data)
            self._note_failure(parts, error)
            raise error
        with self._lock:
            self._hosts.setdefault(_short(parts.geturl()), _HostState()).answered = True
        return data

    def _count(self, method: str, path: str, body: Optional[bytes], data: bytes, start: float,
               failed: bool, wire: Optional[int] = None) -> None:
        name = path.rstrip("/").rsplit("/", 1)[-1] or "/"
        elapsed = time.monotonic() - start
        with self._lock:
            self.stats.requests += 1
            self.stats.failures += int(failed)
            self.stats.bytes_sent += len(body or b"")
            self.stats.bytes_received += len(data) if wire is None else wire
            self.stats.seconds += elapsed
            self.stats.per_method[name] = self.stats.per_method.get(name, 0) + 1
            seconds = self.stats.per_method_seconds
            seconds[name] = seconds.get(name, 0.0) + elapsed
            self.stats.per_method_failures[name] = self.stats.per_method_failures.get(name, 0) + int(failed)

    def _note_failure(self, parts: urllib.parse.SplitResult, exc: BaseException) -> None:
        with self._lock:
            state = self._hosts.setdefault(_short(parts.geturl()), _HostState())
            state.last_failure, state.when = getattr(exc, "diag", "") or str(exc), time.monotonic()

    # ------------------------------------------------------------------ connections
    def _checkout(self, key: tuple, proxy: Optional[hc.ProxyURL], deadline: hc.Deadline, fresh: bool) -> tuple:
        """A connection for one request, ``(conn, reused)``: an idle kept-alive one that still looks
        open (unless ``fresh``), else a new one, connected by the caller under the request's deadline."""
        while not fresh:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                break
            if conn.is_idle_usable():
                return conn, True
            conn.close()
        scheme, host, port = key
        if proxy is not None and proxy.error:
            raise RequestFailure(f"{scheme}://{host}:{port}: {proxy.error}", "proxy", permanent=True)
        connect = min(self.connect_timeout, deadline.seconds) if self.connect_timeout else deadline.seconds
        if scheme == "https":
            conn = hc.TLSConnection(proxy.host if proxy else host, proxy.port if proxy else port,
                                    context=self._ssl_context(), connect_timeout=connect)
            if proxy is not None:
                auth = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else None
                conn.set_tunnel(host, port, headers=auth)
        else:
            conn = hc.Connection(proxy.host if proxy else host, proxy.port if proxy else port,
                                 connect_timeout=connect)
        return conn, False

    def _checkin(self, key: tuple, conn: Any) -> None:
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
                if self.cacert and not os.path.isfile(self.cacert):
                    raise RequestFailure(f"CA file {self.cacert} does not exist", "tls", permanent=True)
                capath = self.capath or (None if self.cacert else default_capath())
                ctx = ssl.create_default_context(cafile=self.cacert, capath=capath)
                proxy = self.proxy if self.proxy is not None else client_certificate()
                if proxy:
                    try:
                        ctx.load_cert_chain(proxy)
                    except (ssl.SSLError, OSError) as exc:
                        logger.warning("cannot use %s as client certificate: %s", proxy, exc)
                self._ssl = ctx
            return self._ssl


# ---------------------------------------------------------------------- failures
def _translate(exc: http.client.HTTPException) -> OSError:
    """The OSError subclass for a framing failure ``http.client`` found itself."""
    if isinstance(exc, http.client.RemoteDisconnected):
        return hc.ServerClosed(str(exc) or "the server closed the connection without a reply")
    if isinstance(exc, http.client.IncompleteRead):
        return hc.TruncatedReply(f"the reply was cut short ({exc!r})")
    if isinstance(exc, http.client.LineTooLong):
        return hc.BadHeader(f"reply line too long ({exc})")
    if isinstance(exc, (http.client.BadStatusLine, http.client.UnknownProtocol)):
        return hc.BadStatusLine(f"bad status line {str(exc)[:80]!r}")
    return hc.HttpFramingError(f"broken reply: {exc}")


def _failure(exc: OSError, method: str, url: str) -> RequestFailure:
    """Classify an OSError of one attempt (kind, permanent, written)."""
    written = bool(getattr(exc, "pilot_written", False))
    where = f"{method} {_short(url)}"
    if isinstance(exc, RequestFailure):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return RequestFailure(f"{where}: TLS verification failed: {exc.verify_message or exc}", "tls",
                              permanent=True)
    if isinstance(exc, ssl.SSLError):
        return RequestFailure(f"{where}: TLS failure: {exc}", "tls", written=written)
    if isinstance(exc, (hc.DeadlineExceeded, socket.timeout, TimeoutError)):
        return RequestFailure(f"{where}: {exc}", "timeout", written=written)
    if isinstance(exc, hc.HttpFramingError):
        return RequestFailure(f"{where}: {exc}", "framing", written=written)
    if not written and ("Tunnel connection failed" in str(exc) or isinstance(exc, hc.ProxyError)):
        return RequestFailure(f"{where}: proxy: {exc}", "proxy")
    if not written:
        return RequestFailure(f"{where}: server unreachable: {exc}", "unreachable")
    return RequestFailure(f"{where}: {exc}", "network", written=True)


def failure_info(exc: BaseException) -> tuple:
    """``(kind, permanent)`` of a failure raised by the client (looks through ``raise ... from``)."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, (RequestFailure, HttpError)):
            return exc.kind, bool(exc.permanent)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]  # a BaseException chain
        seen += 1
    return "", False


# ---------------------------------------------------------------------- the one instance
@dataclass
class _Shared:
    client: Optional[HttpClient] = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_SHARED = _Shared()  # the one registry of the process (set once at start-up, like pilot.info.infosys)


def set_shared_client(client: Optional[HttpClient]) -> None:
    """Make ``client`` the pilot's one HTTP client (``pilot.main`` does it at start-up)."""
    with _SHARED.lock:
        _SHARED.client = client


def shared_client(args: Any = None) -> HttpClient:
    """The pilot's one HTTP client; when none was set yet (the Data API used by Harvester, tools,
    tests) it is built on first use, from ``args`` (as :func:`client_from_args`) or the configuration."""
    with _SHARED.lock:
        if _SHARED.client is None:
            _SHARED.client = client_from_args(args) if args is not None else client_from_config()
        return _SHARED.client


# ---------------------------------------------------------------------- replies
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


_PILOT2_NAMES = ("https_setup", "cacert", "capath", "cacert_default_location")


def __getattr__(name: str) -> Any:
    """Pilot 2's set-up names, importable from here (they live in :mod:`pilot.util.httpsetup`)."""
    if name in _PILOT2_NAMES:
        from pilot.util import httpsetup

        return getattr(httpsetup, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
