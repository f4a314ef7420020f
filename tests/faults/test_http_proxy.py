"""A whole pilot that reaches the PanDA server only through a real forwarding proxy (tinyproxy).

How direct access is blocked: the pilot runs in its own network namespace (``ip netns``). Its only
links are its own loopback (nothing listens there) and a veth pair to the host, where tinyproxy
listens on the host end. The dev server listens on the host's 127.0.0.1, which the namespace cannot
reach. The pilot is told ``--url https://localhost:<port>`` (the name on the dev server's
certificate): connecting to it directly hits the namespace's own loopback and is refused, so every
request the job needs (getJob, updates, queue and storage data, traces) must go through
``https_proxy``/``http_proxy``: a CONNECT tunnel for HTTPS, an absolute URL for plain HTTP.
tinyproxy comes from ``scripts/install-test-deps.sh`` (Debian's package); the test needs root
(network namespaces) and says so when it cannot run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pilot.devserver.samples import sample_job
from tests.e2e.conftest import REPO, TEST_CONFIG

TINYPROXY = "/usr/bin/tinyproxy"

needs_netns = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or not os.path.exists(TINYPROXY),
    reason="needs root, iproute2 and tinyproxy (bash scripts/install-test-deps.sh)")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def netns():
    """A network namespace joined to the host by a veth pair: (name, host address, namespace address)."""
    tag = uuid.uuid4().hex[:6]
    name, host_if, ns_if = f"pilotpx-{tag}", f"vph{tag}", f"vpn{tag}"
    net = 16 + int(tag[:2], 16) % 200
    host_ip, ns_ip = f"10.213.{net}.1", f"10.213.{net}.2"
    _ip("netns", "add", name)
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", name)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", name, "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        _ip("-n", name, "link", "set", ns_if, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield name, host_ip, ns_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


@pytest.fixture
def tinyproxy(tmp_path, netns):
    """tinyproxy on the host end of the veth pair (a free port); yields (proxy URL, log path)."""
    _, host_ip, _ = netns
    probe = socket.socket()
    probe.bind((host_ip, 0))
    port = probe.getsockname()[1]
    probe.close()
    log = tmp_path / "tinyproxy.log"
    conf = tmp_path / "tinyproxy.conf"
    conf.write_text(f"Port {port}\nListen {host_ip}\nTimeout 60\nMaxClients 50\nLogLevel Info\n"
                    f"LogFile \"{log}\"\n")
    proc = subprocess.Popen([TINYPROXY, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:  # wait until it accepts connections (bounded)
            try:
                socket.create_connection((host_ip, port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"tinyproxy did not start: {log.read_text() if log.exists() else ''}")
                time.sleep(0.1)
        yield f"http://{host_ip}:{port}", log
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run_pilot(devserver, netns, workdir: Path, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    name = netns[0]
    https_port = devserver.https_url.rsplit(":", 1)[1]
    http_base = "http://localhost:" + devserver.url.rsplit(":", 1)[1]
    cfg = workdir / "test.cfg"
    cfg.write_text(TEST_CONFIG + f"\n[Rucio]\nurl: {http_base}/traces/\n")
    cmd = ["ip", "netns", "exec", name, sys.executable, str(REPO / "pilot.py"), "-q", "DEV_QUEUE",
           "--pilot-user", "generic", "--url", "https://localhost", "-p", https_port, "-a", str(workdir),
           "--config", str(cfg), "--cacert", str(devserver.cacert),
           "--queuedata-url", f"{http_base}/queuedata/{{pandaqueue}}.json",
           "--storagedata-url", f"{http_base}/storagedata.json", "-x", "1", "-d"]
    penv = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and k != "PILOT_CACERT"}
    penv.update(PYTHONPATH=str(REPO), **env)
    return subprocess.run(cmd, cwd=workdir, env=penv, capture_output=True, text=True, timeout=timeout)


@needs_netns
def test_direct_access_is_blocked_in_the_namespace(devserver, netns):
    port = devserver.https_url.rsplit(":", 1)[1]
    probe = subprocess.run(["ip", "netns", "exec", netns[0], sys.executable, "-c",
                            f"import socket; socket.create_connection(('localhost', {port}), timeout=5)"],
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "refused" in probe.stderr.lower(), probe.stderr


@needs_netns
def test_job_runs_through_the_proxy_only(devserver, netns, tinyproxy, tmp_path):
    proxy, log = tinyproxy
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    result = _run_pilot(devserver, netns, tmp_path, {"https_proxy": proxy, "http_proxy": proxy})
    assert result.returncode == 0, result.stderr[-4000:]
    assert devserver.wait_final(pandaid, timeout=30)["state"] == "finished"
    text = log.read_text()
    https_port = devserver.https_url.rsplit(":", 1)[1]
    assert f"CONNECT localhost:{https_port}" in text, text[-3000:]  # the HTTPS calls: a CONNECT tunnel
    assert "queuedata/DEV_QUEUE.json" in text and "storagedata.json" in text, text[-3000:]


@needs_netns
def test_no_proxy_sends_the_request_direct(devserver, netns, tinyproxy, tmp_path):
    proxy, log = tinyproxy
    result = _run_pilot(devserver, netns, tmp_path,
                        {"https_proxy": proxy, "http_proxy": proxy, "no_proxy": "example.org,localhost"})
    assert result.returncode != 0
    assert "refused" in result.stderr.lower(), result.stderr[-3000:]
    asked = [line for line in log.read_text().splitlines() if "Request (file descriptor" in line]
    assert not [line for line in asked if "localhost" in line], asked  # no request for localhost via the proxy
