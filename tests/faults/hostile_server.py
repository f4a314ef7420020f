"""A hostile HTTP server on loopback: each path misbehaves in its own way (tests only).

``HostileServer()`` listens on 127.0.0.1 (a free port) in a thread per connection. It reads the
request (headers and a Content-Length body), counts it per path, then answers as the path says:

=================  ==================================================================================
``/ok``            a small JSON reply, connection kept alive (HTTP/1.1)
``/ok-then-close`` the same, then the server closes the idle connection 0.1 s later
``/trickle``       a valid header announcing 1 MB, then one byte every 0.2 s until the client leaves
``/continue``      ``100 Continue`` interim replies, one every 0.05 s, forever
``/gzipbomb``      a ~65 kB gzip body that decodes to 64 MB
``/oversized``     ``Content-Length: 1073741824`` (announced), then bytes until the client leaves
``/endless``       no length, bytes until the client leaves (framed by the end of the connection)
``/chunk/<size>``  a chunked reply whose first chunk-size line is ``<size>`` (e.g. ``-5``, ``zz``)
``/length/<v>``    ``Content-Length: <v>`` (URL-decoded, sent as UTF-8) and 10 bytes of body
``/cl-and-te``     both Content-Length and Transfer-Encoding: chunked
``/reset``         announces 1000 bytes, sends 100, then resets the connection (RST)
``/cut``           announces 1000 bytes, sends 100, then closes the connection normally (FIN)
``/silent``        reads the request, never answers (the connection stays open)
``/status/<n>``    an empty reply with status ``n``
``/sequence/...``  the Nth request to this path gets the Nth comma-separated status of the list
=================  ==================================================================================

Any other path gets ``404 Not Found``, or with ``HostileServer(fallback="silent")`` no answer at all.
"""

from __future__ import annotations

import functools
import socket
import struct
import threading
import urllib.parse
import zlib
from collections import Counter
from typing import Optional


@functools.lru_cache(maxsize=1)
def gzip_bomb(size: int = 64 * 1024 * 1024) -> bytes:
    """One gzip member of ~65 kB that decodes to ``size`` zero bytes (built once, in pieces)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1024 * 1024)
    out = [packer.compress(block) for _ in range(size // len(block))]
    out.append(packer.flush())
    return b"".join(out)


class HostileServer:
    """See the module doc. Use as a context manager; ``url(path)``, ``count(path)``."""

    def __init__(self, fallback: str = "404") -> None:
        self.fallback = fallback  # what any other path gets: "404" or "silent"
        self.stop = threading.Event()
        self.counts: Counter = Counter()
        self.headers: dict = {}  # path -> the headers of its last request (lower-case names)
        self._lock = threading.Lock()
        self._conns: list = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._threads: list = []
        self._acceptor = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)

    def __enter__(self) -> "HostileServer":
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, path: str) -> int:
        with self._lock:
            return self.counts[path]

    def close(self) -> None:
        self.stop.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        for thread in self._threads + [self._acceptor]:
            if thread.ident is not None:
                thread.join(5)

    # ------------------------------------------------------------------ serving
    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name="hostile-conn", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while not self.stop.is_set():
                path = self._read_request(reader)
                if path is None:
                    return
                if not self._answer(conn, path):
                    return
        except OSError:
            return
        finally:
            reader.close()
            conn.close()

    def _read_request(self, reader) -> Optional[str]:
        line = reader.readline(65537)
        if not line:
            return None
        parts = line.decode("latin-1").split()
        if len(parts) < 2:
            return None
        target = parts[1]
        if "://" in target:  # through a forwarding proxy: the absolute form
            target = urllib.parse.urlsplit(target).path or "/"
        length = 0
        seen = {}
        while True:
            header = reader.readline(65537)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            seen[name.strip().lower()] = value.strip()
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length:
            reader.read(length)
        path = target.split("?", 1)[0]
        with self._lock:
            self.counts[path] += 1
            self.headers[path] = seen
        return path

    def _answer(self, conn: socket.socket, path: str) -> bool:
        """Answer one request; True to keep the connection for another one."""
        send = conn.sendall
        if path == "/ok":
            body = b'{"StatusCode": "0", "ok": true}'
            send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(body), body))
            return True
        if path == "/ok-then-close":  # keep-alive announced, then the idle connection is closed
            body = b'{"ok": true}'
            send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            self.stop.wait(0.1)
            return False
        if path == "/trickle":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n")
            while not self.stop.wait(0.2):
                send(b"x")
            return False
        if path == "/continue":
            while not self.stop.wait(0.05):
                send(b"HTTP/1.1 100 Continue\r\n\r\n")
            return False
        if path == "/gzipbomb":
            body = gzip_bomb()
            send(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body))
            send(body)
            return True
        if path in ("/oversized", "/endless"):
            head = b"Content-Length: 1073741824\r\n" if path == "/oversized" else b"Connection: close\r\n"
            send(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n")
            block = b"y" * 65536
            while not self.stop.is_set():
                send(block)
            return False
        if path.startswith("/chunk/"):
            size = urllib.parse.unquote(path[len("/chunk/"):]).encode()
            send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\n" + b"z" * 64 + b"\r\n")
            self.stop.wait(30)
            return False
        if path.startswith("/length/"):
            value = urllib.parse.unquote(path[len("/length/"):]).encode("utf-8")
            send(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\n" + b"0123456789")
            self.stop.wait(30)
            return False
        if path == "/cl-and-te":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            return True
        if path in ("/reset", "/cut"):
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"r" * 100)
            if path == "/reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.shutdown(socket.SHUT_WR)
            return False
        if path == "/silent" or self.fallback == "silent":
            self.stop.wait(60)
            return False
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            send(b"HTTP/1.1 %d Status\r\nContent-Length: 0\r\n\r\n" % status)
            return True
        if path.startswith("/sequence/"):
            statuses = path[len("/sequence/"):].split(",")
            with self._lock:
                nth = self.counts[path] - 1
            status = int(statuses[min(nth, len(statuses) - 1)])
            body = b'{"StatusCode": "0"}' if status == 200 else b""
            send(b"HTTP/1.1 %d Status\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
            return True
        send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return True
