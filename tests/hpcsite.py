"""Test helpers for the HPC workflow: a Harvester access point with one job per rank, a local queue.

``make_access_point(root, count)`` writes what Harvester's HPC one-shot mode leaves for a worker:
``worker_pandaids.json``, ``<PandaID>/HPCJobs.json`` and each job's input file in its directory, plus
``queuedata.json`` (the dev server's queue) and ``storagedata.json`` beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
from pathlib import Path
from typing import Optional

import pytest

from pilot.devserver.info import default_queuedata, default_storagedata
from pilot.devserver.samples import sample_job, storage_path

REPO = Path(__file__).resolve().parents[1]
QUEUE = "HPC_QUEUE"


def make_access_point(root: Path, count: int, payload: Optional[str] = None, first_id: int = 7000,
                      overrides: Optional[dict] = None) -> dict:
    """Jobs for ``count`` ranks under ``root/access``; returns {"access": path, "pandaids": [...], ...}."""
    access = root / "access"
    storage = root / "storage"
    access.mkdir(parents=True, exist_ok=True)
    pandaids = []
    for index in range(count):
        pandaid = str(first_id + index)
        job = sample_job(storage, pandaid=int(pandaid), overrides=dict(overrides or {}))
        if payload is not None:
            job["jobPars"] = job["jobPars"].replace("echo done", payload)
        job_dir = access / pandaid
        job_dir.mkdir(exist_ok=True)
        for lfn in job["inFiles"].split(","):
            shutil.copy(storage_path(storage, job["scopeIn"].split(",")[0], lfn), job_dir / lfn)
        (job_dir / "HPCJobs.json").write_text(json.dumps({pandaid: job}))
        pandaids.append(pandaid)
    (access / "worker_pandaids.json").write_text(json.dumps(pandaids))
    queuedata = root / "queuedata.json"
    queuedata.write_text(json.dumps(default_queuedata(QUEUE)))
    storagedata = root / "storagedata.json"
    record = default_storagedata(str(storage))
    storagedata.write_text(json.dumps({record["name"]: record}))
    return {"access": access, "pandaids": pandaids, "queuedata": queuedata, "storagedata": storagedata}


def pilot_args(site: dict, workdir: Path, config_path: Path, resource: str = "generic") -> list:
    """The pilot command line of one rank (prefix it with mpirun)."""
    return [sys.executable, str(REPO / "pilot.py"), "-q", QUEUE, "--pilot-user", "generic", "-w", "generic_hpc",
            "--hpc-resource", resource, "--harvester-workdir", str(site["access"]), "-a", str(workdir),
            "--queuedata-url", f"file://{site['queuedata']}", "--storagedata-url", f"file://{site['storagedata']}",
            "--config", str(config_path), "-z", "-t", "-d", "--cleanup", "false"]  # tests read the rank dirs


def require(*tools: str, python_module: str = "") -> None:
    """Skip the test when a tool is missing on a developer machine; fail under CI=true (CI installs them)."""
    missing = [t for t in tools if shutil.which(t) is None]
    if python_module:
        import subprocess

        probe = subprocess.run(["/usr/bin/python3", "-c", f"import {python_module}"], capture_output=True)
        if probe.returncode != 0:
            missing.append(f"{python_module} for /usr/bin/python3")
    if not missing:
        return
    message = f"missing {', '.join(missing)} (install with: bash scripts/hpc/install.sh)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class Listener:
    """A JSON-lines TCP collector on a fixed port that can be stopped and started again."""

    def __init__(self, port: int = 0) -> None:
        self.records: list = []
        self.port = port
        self._server = None
        self._stop = threading.Event()
        self._threads: list = []
        self._conns: list = []

    def start(self) -> "Listener":
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(8)
        server.settimeout(0.2)
        self.port = server.getsockname()[1]
        self._server = server
        self._stop.clear()
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads = [thread]
        return self

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._conns.append(conn)
            thread = threading.Thread(target=self._read, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read(self, conn: socket.socket) -> None:
        buffer = b""
        conn.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self.records.append(json.loads(line))

    def stop(self) -> None:
        """Disappear: close the listening socket and every connection (the port is then refused)."""
        self._stop.set()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self._conns = []
        self._server.close()
        for thread in self._threads:
            thread.join(timeout=2)

    def messages(self) -> list:
        return [r["message"] for r in self.records]
