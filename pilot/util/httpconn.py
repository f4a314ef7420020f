"""Connections for the pilot's HTTP client: the standard library's ``http.client``, bounded and checked.

:class:`pilot.util.https.HttpClient` owns the policy (retries, back-off, pooling, TLS material,
statistics). This module only adapts ``http.client`` so that a hostile or broken server cannot hold
or flood the pilot:

* every read of a reply (the status line, interim ``1xx`` replies, headers, body, a proxy's CONNECT
  answer) goes through a reader that sets the socket time-out to what is left of the request's
  :class:`Deadline`, so a server that trickles a byte at a time or repeats ``100 Continue`` forever
  ends with :class:`DeadlineExceeded` when the request's total time is up;
* ``Content-Length`` and ``Transfer-Encoding`` are checked before the body is read, chunk sizes are
  parsed strictly (ASCII hex digits only), and the body and its gzip/deflate decoding are capped;
* ``HTTP(S)_PROXY``/``NO_PROXY`` are read by :class:`ProxySettings` (HTTPS goes through a CONNECT
  tunnel, plain HTTP sends the absolute URL to the proxy).

Every violation is an ``OSError`` subclass (:class:`HttpFramingError` and its children), so callers
handle network and framing failures alike.
"""

from __future__ import annotations

import base64
import http.client
import io
import re
import select
import socket
import time
import urllib.parse
import zlib
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Mapping, Optional, Tuple

#: longest chunk-size line accepted (``http.client`` bounds status and header lines itself)
MAX_LINE = 65536
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_DIGITS = re.compile(r"[0-9]{1,18}")


# ---------------------------------------------------------------------- errors
class HttpFramingError(OSError):
    """A reply that breaks HTTP/1.1 framing or the client's limits."""


class BadStatusLine(HttpFramingError):
    """The status line is not ``HTTP/1.x NNN reason`` (or the server speaks another protocol)."""


class BadHeader(HttpFramingError):
    """A header line too long, too many header lines, or an unsupported Transfer-Encoding."""


class BadContentLength(HttpFramingError):
    """A Content-Length that is not ASCII digits, repeated with different values, or next to chunking."""


class BadChunkSize(HttpFramingError):
    """A chunk-size line that is not ASCII hex digits (negative, empty, garbage)."""


class TruncatedReply(HttpFramingError):
    """The connection ended before the announced body (or chunk) was complete."""


class ReplyTooLarge(HttpFramingError):
    """The reply body is larger than the client's cap."""


class DecodedTooLarge(ReplyTooLarge):
    """The decompressed body is larger than the client's cap (e.g. a gzip bomb)."""


class BadContentEncoding(HttpFramingError):
    """An unknown Content-Encoding, or a compressed body that does not decode."""


class DeadlineExceeded(TimeoutError):
    """The request's total time (connect, send, interim replies, body) is up."""


class ServerClosed(ConnectionResetError):
    """The server closed the connection before it sent a status line."""


class ProxyError(OSError):
    """The HTTP proxy refused the CONNECT tunnel or is not usable."""


# ---------------------------------------------------------------------- deadline
class Deadline:
    """The end of one request on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; raises DeadlineExceeded when none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"the request took longer than {self.seconds:g} s")
        return left


class _DeadlineReader(io.RawIOBase):
    """Raw reads from a socket, each bounded by what is left of the request's deadline.

    It reads through the socket's own ``SocketIO`` (which keeps the socket's file descriptor open
    until the reply is read, as ``http.client`` expects when it closes a connection early).
    """

    def __init__(self, sock: socket.socket, deadline: Callable[[], Deadline]) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> Optional[int]:
        self._sock.settimeout(self._deadline().left())
        try:
            return self._raw.readinto(buf)
        except socket.timeout:
            self._deadline().left()  # raises DeadlineExceeded when the time is up
            raise DeadlineExceeded("no data from the server within the request's time") from None

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _SocketView:
    """What ``HTTPResponse`` needs of a socket: ``makefile('rb')``, here with the deadline reader."""

    def __init__(self, sock: socket.socket, deadline: Callable[[], Deadline]) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _Response(http.client.HTTPResponse):
    """``HTTPResponse`` reading through the deadline reader, with strict chunk sizes."""

    def __init__(self, sock: socket.socket, debuglevel: int = 0, method: Optional[str] = None,
                 url: Optional[str] = None, *, deadline: Callable[[], Deadline]) -> None:
        super().__init__(_SocketView(sock, deadline), debuglevel, method, url)  # type: ignore[arg-type]  # a view

    def _read_next_chunk_size(self) -> int:
        line = self.fp.readline(MAX_LINE + 1)
        if not line:
            self._close_conn()  # type: ignore[attr-defined]  # http.client's own (untyped) helper
            raise TruncatedReply("the connection ended before the next chunk")
        size = line.split(b";", 1)[0].strip(b" \t\r\n")
        if len(line) > MAX_LINE or not _HEX.fullmatch(size):
            self._close_conn()  # type: ignore[attr-defined]  # http.client's own (untyped) helper
            raise BadChunkSize(f"bad chunk size line {line[:40]!r}")
        return int(size, 16)


class _DeadlineMixin:
    """A connection whose replies and connect honour ``self.deadline`` (set before each request)."""

    deadline: Deadline
    connect_timeout: float
    timeout: Optional[float]  # HTTPConnection's
    response_class: Any  # HTTPConnection's: here a partial of _Response that carries the deadline
    sock: Any  # HTTPConnection's socket (None until connected)

    def _setup(self) -> None:
        self.deadline = Deadline(3600)
        self.response_class = partial(_Response, deadline=lambda: self.deadline)

    def connect(self) -> None:
        self.timeout = min(self.connect_timeout, self.deadline.left())
        super().connect()  # type: ignore[misc]  # the connection class the mixin is combined with
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def begin_request(self, deadline: Deadline) -> None:
        """The deadline of the next request (send time-out included)."""
        self.deadline = deadline
        if self.sock is not None:
            self.sock.settimeout(deadline.left())

    def is_idle_usable(self) -> bool:
        """Whether a kept-alive connection looks open: nothing to read (no EOF, no stray bytes)."""
        sock = self.sock
        if sock is None:
            return False
        try:
            if getattr(sock, "pending", lambda: 0)():
                return False
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable


class Connection(_DeadlineMixin, http.client.HTTPConnection):
    """A plain HTTP connection with the request deadline."""

    def __init__(self, host: str, port: Optional[int] = None, connect_timeout: float = 60) -> None:
        super().__init__(host, port)
        self.connect_timeout = connect_timeout
        self._setup()


class TLSConnection(_DeadlineMixin, http.client.HTTPSConnection):
    """An HTTPS connection (possibly through a CONNECT tunnel) with the request deadline."""

    def __init__(self, host: str, port: Optional[int] = None, context: Any = None,
                 connect_timeout: float = 60) -> None:
        super().__init__(host, port, context=context)
        self.connect_timeout = connect_timeout
        self._setup()


# ---------------------------------------------------------------------- checking and reading a reply
def check_framing(resp: http.client.HTTPResponse, max_size: int) -> None:
    """Refuse a reply whose length headers are broken or announce more than ``max_size`` bytes."""
    encodings = [v.strip().lower() for v in ",".join(resp.msg.get_all("transfer-encoding") or []).split(",")
                 if v.strip()]
    lengths = [v.strip() for v in ",".join(resp.msg.get_all("content-length") or []).split(",")]
    if encodings and encodings != ["chunked"]:
        raise BadHeader(f"unsupported Transfer-Encoding {', '.join(encodings)!r}")
    if lengths and lengths != [""]:
        if encodings:
            raise BadContentLength("both Content-Length and Transfer-Encoding in one reply")
        if len(set(lengths)) != 1 or not _DIGITS.fullmatch(lengths[0]):
            raise BadContentLength(f"bad Content-Length {', '.join(lengths)[:60]!r}")
        length = int(lengths[0])
        if length > max_size:
            raise ReplyTooLarge(f"the reply announces {length} bytes (limit {max_size})")
        method = resp._method  # type: ignore[attr-defined]  # http.client's own (untyped) attribute
        if resp.length is None and resp.status not in (204, 304) and method != "HEAD":
            resp.length = length  # a repeated identical value, which http.client leaves unparsed
    if 100 <= resp.status < 200:
        raise BadStatusLine(f"unexpected interim reply {resp.status} as the final reply")


def read_body(resp: http.client.HTTPResponse, max_size: int, max_decoded: int,
              sink: Optional[Callable[[bytes], None]] = None) -> Tuple[bytes, int]:
    """The decoded body (or b'' when ``sink`` takes it piecewise) and the bytes read off the wire."""
    decoder = _decoder(resp.getheader("Content-Encoding", "") or "", max_decoded)
    parts = []
    wire = 0
    try:
        while True:
            piece = resp.read(65536)
            if not piece:
                break
            wire += len(piece)
            if wire > max_size:
                raise ReplyTooLarge(f"the reply is larger than {max_size} bytes")
            data = decoder.feed(piece) if decoder else piece
            if sink is not None:
                sink(data)
            else:
                parts.append(data)
        if resp.length:  # http.client returns what came when the connection ends early: not enough
            raise TruncatedReply(f"the reply was cut short after {wire} bytes ({resp.length} missing)")
        if decoder:
            tail = decoder.finish()
            if sink is not None:
                sink(tail)
            else:
                parts.append(tail)
    except http.client.IncompleteRead as exc:
        raise TruncatedReply(f"the reply was cut short after {wire + len(exc.partial)} bytes") from None
    return b"".join(parts), wire


class _Decoder:
    """Incremental gzip/deflate decoding that never holds more than ``limit`` decoded bytes."""

    def __init__(self, wbits: int, limit: int, name: str) -> None:
        self._obj = zlib.decompressobj(wbits)
        self.limit = limit
        self.name = name
        self.size = 0

    def feed(self, data: bytes) -> bytes:
        out = []
        try:
            while data:
                piece = self._obj.decompress(data, self.limit - self.size + 1)
                self.size += len(piece)
                if self.size > self.limit:
                    raise DecodedTooLarge(f"the {self.name}-decoded reply is larger than {self.limit} bytes")
                out.append(piece)
                data = self._obj.unconsumed_tail
        except zlib.error as exc:
            raise BadContentEncoding(f"the {self.name} body does not decode: {exc}") from None
        return b"".join(out)

    def finish(self) -> bytes:
        try:
            tail = self._obj.flush()
        except zlib.error as exc:
            raise BadContentEncoding(f"the {self.name} body does not decode: {exc}") from None
        self.size += len(tail)
        if self.size > self.limit:
            raise DecodedTooLarge(f"the {self.name}-decoded reply is larger than {self.limit} bytes")
        if not self._obj.eof:
            raise BadContentEncoding(f"the {self.name} body is cut short")
        if self._obj.unused_data:
            raise BadContentEncoding(f"data after the end of the {self.name} stream")
        return tail


def _decoder(encoding: str, limit: int) -> Optional[_Decoder]:
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return _Decoder(16 + zlib.MAX_WBITS, limit, "gzip")
    if name == "deflate":
        return _Decoder(zlib.MAX_WBITS, limit, "deflate")
    raise BadContentEncoding(f"unsupported Content-Encoding {encoding[:40]!r}")


# ---------------------------------------------------------------------- proxies
@dataclass(frozen=True)
class ProxyURL:
    """An HTTP proxy: where to connect and the Proxy-Authorization value (if it has credentials)."""

    host: str
    port: int
    authorization: str = ""
    error: str = ""  # why the variable's value cannot be used (requests that need it fail with this)

    @classmethod
    def parse(cls, text: str) -> "ProxyURL":
        value = text.strip()
        if "://" not in value:
            value = "http://" + value
        parts = urllib.parse.urlsplit(value)
        if parts.scheme.lower() != "http" or not parts.hostname:
            raise ValueError(f"unsupported proxy {text!r} (only http://host:port proxies are supported)")
        auth = ""
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        return cls(parts.hostname, parts.port or 80, auth)


@dataclass(frozen=True)
class ProxySettings:
    """``http_proxy``/``https_proxy``/``no_proxy`` (lower case first, as curl reads them)."""

    http: Optional[ProxyURL] = None
    https: Optional[ProxyURL] = None
    no_proxy: Tuple[str, ...] = ()

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None, strict: bool = True) -> "ProxySettings":
        """Read the proxy variables. An unusable proxy value raises ValueError, or with ``strict``
        off is kept as a ProxyURL whose ``error`` says why (only the requests that need it fail)."""
        import os

        env = os.environ if environ is None else environ

        def var(name: str) -> str:
            return (env.get(name.lower()) or env.get(name.upper()) or "").strip()

        http_value, https_value = var("http_proxy"), var("https_proxy")
        entries = tuple(e.strip().lower() for e in var("no_proxy").split(",") if e.strip())

        def proxy(value: str) -> Optional[ProxyURL]:
            if not value:
                return None
            try:
                return ProxyURL.parse(value)
            except ValueError as exc:
                if strict:
                    raise
                return ProxyURL("", 0, error=str(exc))

        return cls(proxy(http_value), proxy(https_value), entries)

    def for_target(self, scheme: str, host: str, port: int) -> Optional[ProxyURL]:
        """The proxy to use for ``scheme://host:port``, or None for a direct connection."""
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or self.bypass(host, port):
            return None
        return proxy

    def bypass(self, host: str, port: int) -> bool:
        """Whether NO_PROXY names ``host`` (``*``, a domain suffix, ``host:port`` or an IP network)."""
        name = host.lower().strip("[]").rstrip(".")
        for entry in self.no_proxy:
            if entry == "*":
                return True
            spec, _, want_port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
            if want_port and want_port != str(port):
                continue
            spec = spec.strip("[]").lstrip(".").rstrip(".")
            if "/" in spec or _is_ip(spec):
                if _ip_in(name, spec):
                    return True
                continue
            if name == spec or name.endswith("." + spec):
                return True
        return False


def _has_port(entry: str) -> bool:
    if entry.startswith("["):
        return "]:" in entry
    return entry.count(":") == 1 and entry.rsplit(":", 1)[1].isdigit()


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ip_in(host: str, spec: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False
