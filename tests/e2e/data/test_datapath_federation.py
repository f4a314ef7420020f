"""Federated XRootD fallback end to end: the job's input replica (the dev server's LOCAL_DISK) is absent
or corrupt, and a second real XRootD server, started here on its own port as the federation endpoint,
holds the file at its global name ``/atlas/rucio/<scope>:<lfn>``. The pilot copies the input from
``root://127.0.0.1:<port>//atlas/rucio/<scope>:<lfn>``, checks its checksum, the job finishes, and
the trace report says the file came through the federation. A corrupt copy in the federation too
fails the job with the checksum error."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from pilot.copytool.common import deterministic_path
from pilot.devserver.samples import sample_job

from .conftest import storage_env

pytestmark = pytest.mark.storage

CONTENT = b"the federated input\n" * 50


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def federation(tmp_path):
    """A private xrootd (root:// only, adler32) on a free port; yields (port, data root)."""
    if shutil.which("xrootd") is None or shutil.which("xrdcp") is None:
        pytest.skip("xrootd/xrdcp are not installed")
    base = Path(tempfile.mkdtemp(prefix="datapath-fed-"))  # outside pytest's 0700 dirs: xrootd's user reaches it
    os.chmod(base, 0o755)
    data, admin, run = base / "data", base / "admin", base / "run"
    for path in (data, admin, run):
        path.mkdir(parents=True)
    port = _free_port()
    cfg = base / "xrootd.cfg"
    cfg.write_text(f"all.export /\nall.role server\noss.localroot {data}\nall.adminpath {admin}\n"
                   f"all.pidpath {run}\nxrd.port {port}\nxrootd.chksum adler32\n")
    user = ["-R", "xrootd"] if os.geteuid() == 0 else []
    if user:
        for path in (base, data, admin, run):
            shutil.chown(path, "xrootd", "xrootd")
    with open(tmp_path / "xrootd.stdout", "wb") as out:
        proc = subprocess.Popen(["xrootd", *user, "-I", "v4", "-c", str(cfg), "-l", str(base / "xrootd.log")],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:  # does not hang: bounded by the deadline
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the federation xrootd did not start: {(tmp_path / 'xrootd.stdout').read_text()[-2000:]}")
            time.sleep(0.1)
    try:
        yield port, data
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(base, ignore_errors=True)


def _put_global(data: Path, scope: str, lfn: str, content: bytes) -> None:
    path = data / "atlas" / "rucio" / f"{scope}:{lfn}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    for part in (data / "atlas", data / "atlas" / "rucio", path):
        if os.geteuid() == 0:
            shutil.chown(part, "xrootd", "xrootd")


def _job(devserver, federation, primary: str, federated: bytes):
    port, data = federation
    devserver.set_queuedata("DEV_QUEUE", {"federation_redirector": f"127.0.0.1:{port}"})
    job = sample_job(devserver.storage_dir, contents=[CONTENT])
    lfn, scope = job["inFiles"], job["scopeIn"]
    replica = Path(devserver.storage_dir) / deterministic_path(scope, lfn)
    if primary == "absent":
        replica.unlink()
    else:  # a corrupt replica: same size, other bytes
        replica.write_bytes(b"X" * len(CONTENT))
    _put_global(data, scope, lfn, federated)
    out = job["outFiles"].split(",")[0]
    job["jobPars"] = f"-c 'cat {lfn} > {out}'"
    return job, lfn, scope, port


@pytest.mark.parametrize("primary", ["absent", "corrupt"])
def test_input_comes_through_the_federation(devserver, start_pilot, federation, primary):
    job, lfn, scope, port = _job(devserver, federation, primary, CONTENT)
    pandaid = devserver.submit(job)
    run = start_pilot(env=storage_env())
    assert run.wait(180) == 0, run.log_text()[-5000:]
    final = devserver.wait_final(pandaid, timeout=30)
    assert final["state"] == "finished", run.log_text()[-5000:]
    url = f"root://127.0.0.1:{port}//atlas/rucio/{scope}:{lfn}"
    assert f"input {lfn} came through the federation ({url})" in run.log_text()
    out = Path(devserver.storage_dir) / deterministic_path("dev", job["outFiles"].split(",")[0])
    assert out.read_bytes() == CONTENT  # the payload read the federation's (good) copy
    assert final["final_update"]["jobMetrics"]["nFederatedInputs"] == "1"
    traces = [t for t in devserver.traces() if t.get("filename") == lfn]
    done = [t for t in traces if t["clientState"] == "DONE"]
    assert len(done) == 1 and done[0]["url"] == url and done[0]["protocol"] == "xrdcp/federation", traces


def test_a_corrupt_federated_copy_fails_the_checksum(devserver, start_pilot, federation):
    job, lfn, _, _ = _job(devserver, federation, "corrupt", b"Y" * len(CONTENT))
    pandaid = devserver.submit(job)
    run = start_pilot(env=storage_env())
    run.wait(180)
    final = devserver.wait_final(pandaid, timeout=30)
    assert final["state"] == "failed"
    assert f"input {lfn} failed through the federation too" in run.log_text()
