"""HTTP(S) layer and lifecycle of the dev server.

``DevServerRuntime`` builds the store, the info data and the ``App``, binds a plain HTTP port and
optionally an HTTPS port (TLS handshakes run in the per-connection thread, never in the accept loop),
serves them from background threads and writes ``<state-dir>/devserver.json`` atomically once both
ports listen. ``serve()`` is the foreground variant used by ``python -m pilot.devserver serve``: it
prints one ``DEVSERVER READY {...}`` line on stdout and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from .app import App
from .files import files_dir
from .info import InfoData
from .routing import Request
from .store import Store
from .tls import ensure_tls_material

logger = logging.getLogger(__name__)

STATE_FILE = "devserver.json"
READY_PREFIX = "DEVSERVER READY "
MAX_BODY = 256 * 1024 * 1024
DEFAULT_PROXY_TEXT = "devserver placeholder proxy (start the server with HTTPS to get a real PEM)\n"


@dataclass
class ServerConfig:
    """Everything ``serve`` needs; paths default to places inside ``state_dir``."""

    state_dir: str
    host: str = "127.0.0.1"
    port: int = 0
    https_port: Optional[int] = None
    db: Optional[str] = None
    storage_dir: Optional[str] = None
    tls_dir: Optional[str] = None
    queue: Optional[str] = None
    queuedata: Optional[str] = None
    storagedata: Optional[str] = None
    proxy_file: Optional[str] = None
    inject: list[dict[str, Any]] = field(default_factory=list)

    def resolved(self) -> "ServerConfig":
        """Return a copy with every default path filled in (absolute)."""
        state = Path(self.state_dir).resolve()
        return ServerConfig(
            state_dir=str(state), host=self.host, port=self.port, https_port=self.https_port,
            db=str(Path(self.db).resolve()) if self.db else str(state / "devserver.db"),
            storage_dir=str(Path(self.storage_dir).resolve()) if self.storage_dir else str(state / "storage"),
            tls_dir=str(Path(self.tls_dir).resolve()) if self.tls_dir else str(state / "tls"),
            queue=self.queue, queuedata=self.queuedata, storagedata=self.storagedata,
            proxy_file=self.proxy_file, inject=list(self.inject))


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, hands it to the App, writes (or withholds) the reply."""

    server_version = "PanDADevServer/1.0"
    timeout = 120  # seconds of client silence before the connection thread gives up
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        """Serve a GET."""
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        """Serve a POST."""
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        """Serve a PUT."""
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        """Serve a DELETE."""
        self._serve("DELETE")

    def _read_body(self) -> Optional[bytes]:
        """Read the request body (Content-Length or chunked); None when it is too large."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self, verb: str) -> None:
        """Run the request through the App and send the outcome."""
        started = time.monotonic()
        body = self._read_body()
        if body is None:
            self.send_error(413, "request body too large")
            return
        parts = urlsplit(self.path)
        request = Request(verb=verb, path=parts.path, query=parts.query, headers=dict(self.headers.items()),
                          body=body, client=self.client_address[0], scheme=self.server.scheme)
        outcome = self.server.app.handle(request)
        elapsed = 1000 * (time.monotonic() - started)
        tag = f" [injected {outcome.injected}]" if outcome.injected else ""
        if outcome.drop:
            self.close_connection = True
            logger.info("%s %s %s -> dropped%s (%.0f ms)", self.server.scheme, verb, parts.path, tag, elapsed)
            return
        self.send_response(outcome.status)
        self.send_header("Content-Type", outcome.content_type)
        self.send_header("Content-Length", str(len(outcome.body)))
        self.end_headers()
        self.wfile.write(outcome.body)
        logger.info("%s %s %s -> %d%s (%.0f ms)", self.server.scheme, verb, parts.path, outcome.status, tag, elapsed)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        """Route http.server's own messages (errors only, access is logged above) to logging."""
        logger.debug("%s: " + format, self.client_address[0], *args)


class _Server(ThreadingHTTPServer):
    """A threading HTTP server bound to one App; with an SSL context it speaks HTTPS."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, port: int, app: App, ssl_context: Optional[ssl.SSLContext] = None) -> None:
        """Bind and listen (IPv6 when ``host`` contains a colon)."""
        self.app = app
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context else "http"
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Do the TLS handshake in the connection's own thread, then handle the request."""
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(30)
        try:
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            logger.info("TLS handshake with %s failed: %s", client_address[0], exc)
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)  # type: ignore[arg-type]  # the TLS socket
        finally:
            try:
                conn.close()
            except OSError:
                pass

    @property
    def url(self) -> str:
        """Base URL of this server."""
        raw, port = self.server_address[0], self.server_address[1]
        host = raw.decode() if isinstance(raw, bytes) else str(raw)
        return f"{self.scheme}://[{host}]:{port}" if ":" in host else f"{self.scheme}://{host}:{port}"


def _server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Server-side TLS context; client certificates are neither requested nor checked."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    return context


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temporary file and rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class DevServerRuntime:
    """Builds and runs one dev server (HTTP, optionally HTTPS) in background threads."""

    def __init__(self, config: ServerConfig) -> None:
        """Remember the configuration; nothing is opened before ``start``."""
        self.config = config.resolved()
        self.app: Optional[App] = None
        self.info: dict[str, Any] = {}
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    @property
    def state_file(self) -> Path:
        """Path of devserver.json."""
        return Path(self.config.state_dir) / STATE_FILE

    def _build_app(self) -> tuple[App, Optional[ssl.SSLContext], dict[str, Any]]:
        """Create the store, info data, TLS material and App."""
        cfg = self.config
        assert cfg.storage_dir and cfg.db and cfg.tls_dir
        Path(cfg.state_dir).mkdir(parents=True, exist_ok=True)
        Path(cfg.storage_dir).mkdir(parents=True, exist_ok=True)
        store = Store(cfg.db)
        info_data = InfoData.create(cfg.storage_dir, cfg.queue, cfg.queuedata, cfg.storagedata)
        paths: dict[str, Any] = {"cacert": None, "certdir": None, "proxy": None}
        context = None
        proxy_text = DEFAULT_PROXY_TEXT
        if cfg.https_port is not None:
            material = ensure_tls_material(cfg.tls_dir)
            context = _server_context(material.cert, material.key)
            paths = {"cacert": str(material.cacert), "certdir": str(material.certdir),
                     "proxy": str(material.client_proxy)}
            proxy_text = material.client_proxy.read_text(encoding="utf-8")
        if cfg.proxy_file:
            proxy_text = Path(cfg.proxy_file).read_text(encoding="utf-8")
        app = App(store, info_data, settings={"proxy": proxy_text, "files_dir": files_dir(cfg.state_dir)})
        for rule in cfg.inject:
            app.injector.add(rule)
        return app, context, paths

    def start(self) -> dict[str, Any]:
        """Bind the ports, start serving, write devserver.json; returns its content."""
        cfg = self.config
        app, context, paths = self._build_app()
        self.app = app
        try:
            self._servers.append(_Server(cfg.host, cfg.port, app))
            if context is not None:
                self._servers.append(_Server(cfg.host, cfg.https_port or 0, app, context))
        except OSError:
            self.stop()
            raise
        for srv in self._servers:
            thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"devserver-{srv.scheme}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.info = {
            "pid": os.getpid(), "http_url": self._servers[0].url,
            "https_url": self._servers[1].url if len(self._servers) > 1 else None,
            **paths, "db": cfg.db, "state_dir": cfg.state_dir, "storage_dir": cfg.storage_dir,
            "queue": sorted(app.info.queues())[0] if app.info.queues() else None,
            "started": time.time(),
        }
        app.endpoints = dict(self.info)
        write_json_atomic(self.state_file, self.info)
        logger.info("dev server listening on %s", " and ".join(srv.url for srv in self._servers))
        return dict(self.info)

    def stop(self) -> None:
        """Stop serving, close the database and remove devserver.json (if it is ours)."""
        if self.app is not None:
            self.app.stopping.set()
            self.app.notify()
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()
        if self.app is not None:
            self.app.store.close()
        try:
            if json.loads(self.state_file.read_text(encoding="utf-8")).get("pid") == os.getpid():
                self.state_file.unlink()
        except (OSError, ValueError):
            pass
        logger.info("dev server stopped")


def serve(config: ServerConfig) -> int:
    """Run a dev server in the foreground until SIGTERM/SIGINT; returns the exit status."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()  # only record the request; the main thread does the work

    runtime = DevServerRuntime(config)
    info = runtime.start()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    print(READY_PREFIX + json.dumps(info, sort_keys=True), flush=True)
    try:
        while not stop.wait(3600):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        runtime.stop()
        sys.stdout.flush()
    return 0
