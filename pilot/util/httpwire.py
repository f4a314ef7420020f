"""HTTP/1.1 on one kept-alive socket: the request and reply framing the pilot's HTTP client needs.

:class:`pilot.util.https.HttpClient` owns policy (TLS material, retries, back-off, JSON, statistics);
this module only writes a request and reads one reply off a plain or TLS socket: status line,
headers, and a body framed by ``Content-Length``, ``Transfer-Encoding: chunked`` or the end of the
connection, with interim ``1xx`` replies skipped. It replaces ``http.client``, whose import pulls in
the ``email`` package (about 2 MB of every pilot's resident memory) to parse a few headers.

Every failure is an ``OSError`` (a time-out is ``TimeoutError``), so callers handle network and
framing errors alike; :class:`ServerClosed` marks a kept-alive connection that the server had
already closed, which is worth one retry on a new connection.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from typing import BinaryIO, Dict, Optional

#: longest status, header or chunk-size line accepted
MAX_LINE = 65536
#: most header lines accepted in one reply
MAX_HEADERS = 100
#: a reply with a body longer than this is refused (the pilot's replies are a few kB to a few MB)
MAX_BODY = 512 * 1024 * 1024


class HttpWireError(OSError):
    """A reply that breaks HTTP/1.1 framing (bad status line, header or body length)."""


class ServerClosed(ConnectionResetError):
    """The server closed the connection before it sent a status line."""


@dataclass
class Reply:
    """One HTTP reply, body read completely."""

    status: int
    reason: str
    headers: Dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    will_close: bool = False

    def getheader(self, name: str, default: str = "") -> str:
        """A header's value ('' or ``default`` when absent); repeated headers are joined by ', '."""
        return self.headers.get(name.lower(), default)


class Connection:
    """One connection to ``host:port`` (TLS when a context is given), reused for several requests."""

    def __init__(self, host: str, port: int, timeout: float, context: Optional[ssl.SSLContext] = None,
                 connect_timeout: Optional[float] = None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.connect_timeout = connect_timeout or timeout
        self.context = context
        self.sock: Optional[socket.socket] = None
        self._reader: Optional[BinaryIO] = None

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        """Open the TCP connection (and the TLS session) with the connect time-out."""
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self.timeout)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._reader = sock.makefile("rb")

    def settimeout(self, timeout: float) -> None:
        """The time-out of every later socket operation."""
        self.timeout = timeout
        if self.sock is not None:
            self.sock.settimeout(timeout)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        reader, sock = self._reader, self.sock
        self._reader = self.sock = None
        for thing in (reader, sock):
            if thing is not None:
                try:
                    thing.close()
                except OSError:
                    pass

    # ------------------------------------------------------------------ one exchange
    def exchange(self, method: str, path: str, headers: Dict[str, str], body: Optional[bytes]) -> Reply:
        """Send one request and read its reply; the caller closes the connection on any error."""
        if self.sock is None or self._reader is None:
            self.connect()
        assert self.sock is not None and self._reader is not None
        self.sock.sendall(self._request_bytes(method, path, headers, body))
        return read_reply(self._reader, method)

    def _request_bytes(self, method: str, path: str, headers: Dict[str, str], body: Optional[bytes]) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host_header()}"]
        names = {name.lower() for name in headers}
        if "accept-encoding" not in names:
            lines.append("Accept-Encoding: identity")
        for name, value in headers.items():
            text = str(value)
            if any(c in text for c in "\r\n\0") or any(c in name for c in "\r\n\0: "):
                raise ValueError(f"invalid HTTP header {name!r}")
            lines.append(f"{name}: {text}")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body if body else head

    def _host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.context is not None else 80
        return host if self.port == default else f"{host}:{self.port}"


# ---------------------------------------------------------------------- reading a reply
def read_reply(reader: BinaryIO, method: str = "GET") -> Reply:
    """Read one complete reply (interim 1xx replies skipped) from a buffered reader."""
    first = True
    while True:
        version, status, reason = _status_line(reader, first)
        first = False
        headers = _headers(reader)
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue, 103 Early Hints: the real reply follows
        break
    connection = headers.get("connection", "").lower()
    will_close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    if method == "HEAD" or status in (101, 204, 304):
        return Reply(status, reason, headers, b"", will_close)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _chunked(reader)
    elif "content-length" in headers:
        body = _exact(reader, _length(headers["content-length"]))
    else:
        body = reader.read(MAX_BODY + 1) or b""
        if len(body) > MAX_BODY:
            raise HttpWireError("reply body too large")
        will_close = True
    return Reply(status, reason, headers, body, will_close)


def _line(reader: BinaryIO) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise HttpWireError("reply line too long")
    return line


def _status_line(reader: BinaryIO, first: bool) -> tuple:
    line = _line(reader)
    if not line:
        if first:
            raise ServerClosed("the server closed the connection without a reply")
        raise HttpWireError("connection closed after an interim reply")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
        raise HttpWireError(f"bad status line {line[:80]!r}")
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


def _headers(reader: BinaryIO) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    last = ""
    for _ in range(MAX_HEADERS + 1):
        line = _line(reader)
        if line in (b"\r\n", b"\n", b""):
            return headers
        text = line.decode("latin-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and last:  # obsolete line folding: continues the previous value
            headers[last] = f"{headers[last]} {text.strip()}"
            continue
        name, sep, value = text.partition(":")
        if not sep or not name.strip():
            raise HttpWireError(f"bad header line {line[:80]!r}")
        last = name.strip().lower()
        value = value.strip()
        headers[last] = f"{headers[last]}, {value}" if last in headers else value
    raise HttpWireError("too many header lines")


def _length(text: str) -> int:
    values = {v.strip() for v in text.split(",")}  # a repeated identical Content-Length is allowed
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise HttpWireError(f"bad Content-Length {text!r}")
    length = int(values.pop())
    if length > MAX_BODY:
        raise HttpWireError("reply body too large")
    return length


def _exact(reader: BinaryIO, size: int) -> bytes:
    data = reader.read(size) if size else b""
    if len(data) != size:
        raise HttpWireError(f"reply cut short: {len(data)} of {size} bytes")
    return data


def _chunked(reader: BinaryIO) -> bytes:
    parts = []
    total = 0
    while True:
        line = _line(reader)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpWireError(f"bad chunk size {line[:40]!r}") from None
        if size == 0:
            _headers(reader)  # trailer fields, ignored
            return b"".join(parts)
        total += size
        if total > MAX_BODY:
            raise HttpWireError("reply body too large")
        parts.append(_exact(reader, size))
        if _line(reader) not in (b"\r\n", b"\n"):
            raise HttpWireError("chunk not followed by CRLF")
