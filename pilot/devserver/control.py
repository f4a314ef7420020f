"""Python API to run and drive a dev server from tests and scripts.

``DevServer`` starts ``python -m pilot.devserver serve`` as a real subprocess and waits for its
``DEVSERVER READY`` line (event-driven, bounded by ``startup_timeout``); ``InProcessDevServer`` runs
the same server in threads of the calling process for fast tests. Both share the admin client below::

    with DevServer(tmp_path, https=True) as srv:
        pandaid = srv.submit(sample_job(srv.storage_dir))
        ...  # run a pilot against srv.url / srv.https_url (trust srv.cacert)
        record = srv.wait_final(pandaid, timeout=60)
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional, Union

from .server import READY_PREFIX, DevServerRuntime, ServerConfig

PathLike = Union[str, "os.PathLike[str]"]
_REPO_ROOT = Path(__file__).resolve().parents[2]


class DevServerError(RuntimeError):
    """The dev server could not be started or answered an admin call with an error."""

    def __init__(self, message: str, status: int = 0, body: Any = None) -> None:
        """Keep the HTTP status and decoded body of a failed admin call."""
        super().__init__(message)
        self.status = status
        self.body = body


class AdminClient:
    """Admin calls against a running dev server (plain urllib over its HTTP port)."""

    url: str = ""
    info: dict[str, Any]

    def _call(self, verb: str, path: str, payload: Any = None, timeout: float = 30.0,
              ok: tuple[int, ...] = (200,)) -> Any:
        """Send one admin request and return the decoded JSON reply."""
        if not self.url:
            raise DevServerError("dev server is not running")
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=verb,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local URL
                status, text = resp.status, resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode("utf-8", errors="replace")
        body = json.loads(text) if text else None
        if status not in ok:
            raise DevServerError(f"{verb} {path} -> HTTP {status}: {text[:300]}", status, body)
        return body

    # jobs
    def submit(self, job: dict[str, Any]) -> int:
        """Submit one job definition; returns its PandaID."""
        return int(self._call("POST", "/admin/submit", {"job": job, "count": 1})["pandaids"][0])

    def submit_many(self, job: dict[str, Any], count: int) -> list[int]:
        """Submit ``count`` copies of a definition (PandaIDs assigned by the server)."""
        return [int(x) for x in self._call("POST", "/admin/submit", {"job": job, "count": count})["pandaids"]]

    def job(self, pandaid: int) -> dict[str, Any]:
        """Full record of a job: state, final_update (decoded), updates, event ranges."""
        return dict(self._call("GET", f"/admin/job/{int(pandaid)}"))

    def jobs(self) -> list[dict[str, Any]]:
        """Summaries of all jobs."""
        return list(self._call("GET", "/admin/jobs"))

    def updates(self, pandaid: int) -> list[dict[str, Any]]:
        """Every updateJob call recorded for a job (``fields`` raw as received)."""
        return list(self._call("GET", f"/admin/updates/{int(pandaid)}"))

    def final_update(self, pandaid: int) -> Optional[dict[str, Any]]:
        """The fields of the job's (first) final update, structured fields decoded; None if not final yet."""
        return self.job(pandaid).get("final_update")

    def wait_final(self, pandaid: int, timeout: float = 60.0) -> dict[str, Any]:
        """Block (server-side, no polling) until the job is final; returns its record."""
        return self.wait_state(pandaid, "final", timeout)

    def wait_state(self, pandaid: int, state: str, timeout: float = 60.0) -> dict[str, Any]:
        """Block until the job reaches ``state`` (or any final state); raises on timeout."""
        try:
            return dict(self._call("GET", f"/admin/wait/{int(pandaid)}?until={state}&timeout={timeout}",
                                   timeout=timeout + 30))
        except DevServerError as exc:
            if exc.status == 408:
                raise TimeoutError(f"job {pandaid} did not reach {state} within {timeout} s") from exc
            raise

    def requeue(self, pandaid: int) -> None:
        """Make the job activated again: the next getJob hands out the same PandaID (its records stay)."""
        self._call("POST", "/admin/requeue", {"pandaid": int(pandaid)})

    def set_command(self, pandaid: int, command: Optional[str]) -> None:
        """Deliver ``command`` (e.g. "tobekilled") once in the job's next updateJob reply."""
        self._call("POST", "/admin/command", {"pandaid": int(pandaid), "command": command})

    def add_event_ranges(self, pandaid: int, ranges: list[dict[str, Any]]) -> list[str]:
        """Attach event ranges to a job; returns their ids."""
        return list(self._call("POST", "/admin/eventranges", {"pandaid": int(pandaid), "ranges": ranges})["ids"])

    def event_ranges(self, pandaid: int) -> list[dict[str, Any]]:
        """A job's event ranges with their states."""
        return list(self._call("GET", f"/admin/eventranges/{int(pandaid)}"))

    # injection and reset
    def inject(self, **rule: Any) -> dict[str, Any]:
        """Add a failure-injection rule (method, action, status, delay, count, after, process)."""
        return dict(self._call("POST", "/admin/inject", rule)["added"][0])

    def injections(self) -> list[dict[str, Any]]:
        """Active rules with their counters."""
        return list(self._call("GET", "/admin/inject"))

    def clear_injections(self) -> None:
        """Remove every rule."""
        self._call("DELETE", "/admin/inject")

    def reset(self, scope: str = "all") -> None:
        """Reset rules, data or both (``all``, ``rules``, ``data``)."""
        self._call("POST", "/admin/reset", {"scope": scope})

    # records
    def traces(self) -> list[Any]:
        """Stored Rucio trace reports."""
        return list(self._call("GET", "/admin/traces"))

    def requests(self, method: Optional[str] = None) -> list[dict[str, Any]]:
        """Recorded protocol requests (optionally of one method)."""
        return list(self._call("GET", "/admin/requests" + (f"?method={method}" if method else "")))

    def sink(self, name: str) -> list[dict[str, Any]]:
        """Documents posted to ``/sink/<name>``."""
        return list(self._call("GET", f"/admin/sink/{name}"))

    def status(self) -> dict[str, Any]:
        """Server identity and table counts."""
        return dict(self._call("GET", "/admin/status"))

    # information data and settings
    def set_queuedata(self, queue: str, data: dict[str, Any], merge: bool = True) -> dict[str, Any]:
        """Create or change a queue's schedconfig."""
        return dict(self._call("POST", "/admin/queuedata", {"queue": queue, "data": data, "merge": merge}))

    def set_storagedata(self, name: str, data: dict[str, Any], merge: bool = True) -> dict[str, Any]:
        """Create or change a storage description."""
        return dict(self._call("POST", "/admin/storagedata", {"name": name, "data": data, "merge": merge}))

    def set_settings(self, **settings: Any) -> dict[str, Any]:
        """Change ``proxy`` (getProxy text) and/or ``keypairs`` (name -> key, for getKeyPair)."""
        return dict(self._call("POST", "/admin/settings", settings))

    # identity
    @property
    def https_url(self) -> Optional[str]:
        """HTTPS base URL (None without HTTPS)."""
        return self.info.get("https_url")

    @property
    def cacert(self) -> Optional[str]:
        """CA certificate clients should trust for the HTTPS port."""
        return self.info.get("cacert")

    @property
    def certdir(self) -> Optional[str]:
        """Directory with the CA under its hash name (X509_CERT_DIR)."""
        return self.info.get("certdir")

    @property
    def storage_dir(self) -> str:
        """Root of the LOCAL_DISK storage."""
        return str(self.info.get("storage_dir", ""))

    @property
    def files_dir(self) -> str:
        """Directory whose files ``GET /files/<path>`` serves (created on first use)."""
        path = os.path.join(str(self.info.get("state_dir", "")), "files")
        os.makedirs(path, exist_ok=True)
        return path

    @property
    def db(self) -> str:
        """SQLite database path."""
        return str(self.info.get("db", ""))


def _config(state_dir: PathLike, https: bool, **options: Any) -> ServerConfig:
    """ServerConfig from the keyword options shared by both server classes."""
    https_port = options.pop("https_port", 0)
    return ServerConfig(state_dir=str(state_dir), https_port=https_port if https else None, **options)


class DevServer(AdminClient):
    """A dev server in its own process (``python -m pilot.devserver serve``)."""

    def __init__(self, state_dir: PathLike, https: bool = True, *, host: str = "127.0.0.1", port: int = 0,
                 https_port: int = 0, db: Optional[str] = None, storage_dir: Optional[str] = None,
                 tls_dir: Optional[str] = None, queue: Optional[str] = None, queuedata: Optional[str] = None,
                 storagedata: Optional[str] = None, inject: Optional[list[dict[str, Any]]] = None,
                 startup_timeout: float = 30.0, python: str = sys.executable) -> None:
        """Describe the server; nothing runs before ``start``."""
        self.config = _config(state_dir, https, host=host, port=port, https_port=https_port, db=db,
                              storage_dir=storage_dir, tls_dir=tls_dir, queue=queue, queuedata=queuedata,
                              storagedata=storagedata, inject=list(inject or []))
        self.startup_timeout = startup_timeout
        self.python = python
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.info: dict[str, Any] = {}
        self.log_path = Path(state_dir).resolve() / "devserver.log"

    def command(self) -> list[str]:
        """The serve command line."""
        cfg = self.config
        cmd = [self.python, "-m", "pilot.devserver", "serve", "--host", cfg.host, "--port", str(cfg.port),
               "--state-dir", cfg.state_dir]
        options = {"--https-port": cfg.https_port, "--db": cfg.db, "--storage-dir": cfg.storage_dir,
                   "--tls-dir": cfg.tls_dir, "--queue": cfg.queue, "--queuedata": cfg.queuedata,
                   "--storagedata": cfg.storagedata}
        for flag, value in options.items():
            if value is not None:
                cmd += [flag, str(value)]
        for rule in cfg.inject:
            cmd += ["--inject", json.dumps(rule)]
        return cmd

    def start(self) -> "DevServer":
        """Start the process and wait until it reports that it listens."""
        Path(self.config.state_dir).mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=log, env=env,  # noqa: S603
                                         cwd=self.config.state_dir)
        try:
            self.info = self._await_ready()
        except BaseException:
            self.stop()
            raise
        self.url = self.info["http_url"]
        return self

    def _await_ready(self) -> dict[str, Any]:
        """Read the READY line from the child's stdout (bounded wait, woken by data or exit)."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        buffer = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DevServerError(f"dev server not ready after {self.startup_timeout} s; {self._log_tail()}")
                if not sel.select(remaining):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    code = self.proc.wait(timeout=10)
                    raise DevServerError(f"dev server exited with {code} before it was ready; {self._log_tail()}")
                buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode("utf-8")
        if not line.startswith(READY_PREFIX):
            raise DevServerError(f"unexpected dev server output {line!r}")
        return dict(json.loads(line[len(READY_PREFIX):]))

    def _log_tail(self, size: int = 2000) -> str:
        """The end of the server log, for error messages."""
        try:
            return "log: " + self.log_path.read_bytes()[-size:].decode("utf-8", errors="replace")
        except OSError:
            return "no log"

    @property
    def pid(self) -> Optional[int]:
        """Process id of the server."""
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """SIGTERM the server, wait for it (SIGKILL after ``timeout``); returns its exit status."""
        proc, self.proc = self.proc, None
        self.url = ""
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def __enter__(self) -> "DevServer":
        """Start on entering a with-block."""
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        """Stop on leaving a with-block."""
        self.stop()


class InProcessDevServer(AdminClient):
    """The same server in background threads of this process (fast unit/integration tests)."""

    def __init__(self, state_dir: PathLike, https: bool = False, **options: Any) -> None:
        """Describe the server; options as for ``DevServer`` (host, port, https_port, db, ...)."""
        self.runtime = DevServerRuntime(_config(state_dir, https, **options))
        self.info: dict[str, Any] = {}

    @property
    def app(self) -> Any:
        """The running App (direct access for white-box tests)."""
        return self.runtime.app

    def start(self) -> "InProcessDevServer":
        """Bind and serve."""
        self.info = self.runtime.start()
        self.url = self.info["http_url"]
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.runtime.stop()
        self.url = ""

    def __enter__(self) -> "InProcessDevServer":
        """Start on entering a with-block."""
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        """Stop on leaving a with-block."""
        self.stop()
