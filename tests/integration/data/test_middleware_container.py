"""Transfers of a queue with a middleware container run their tool commands in that runtime (bubblewrap).

The queue's ``container_type`` names ``bwrap:middleware``; xrdcp then moves files to and from the
real XRootD server of ci/storage from inside bubblewrap. A stand-in ``xrdcp`` first on the PATH
records the PID namespace it runs in (then runs the real one): it must differ from the pilot's.
"""

import os
import shutil
import stat

import pytest
from sitetools import adler

from pilot.api.data import StageInClient, StageOutClient
from pilot.api.staging import RetryPolicy
from pilot.common.exception import PilotException
from pilot.info import FileSpec

pytestmark = pytest.mark.storage
FAST = RetryPolicy(attempts=1, base=0.05, cap=0.2)


@pytest.fixture
def contained_xrdcp(real_site, monkeypatch):
    """A recording xrdcp in the work dir (the one directory the container sees writable)."""
    real = shutil.which("xrdcp")
    assert real and shutil.which("bwrap"), "xrdcp and bwrap must be installed (scripts/install-test-deps.sh)"
    bindir = real_site.work / "bin"
    bindir.mkdir()
    record = real_site.work / "namespaces.txt"
    script = bindir / "xrdcp"
    script.write_text(f"#!/bin/bash\nreadlink /proc/self/ns/pid >> {record}\nexec {real} \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    real_site.info.queuedata.container_type = {"middleware": "bwrap"}
    return record


def test_xrdcp_runs_in_bubblewrap_both_ways(real_site, contained_xrdcp, caplog):
    caplog.set_level("INFO", logger="pilot.copytool")
    data = os.urandom(120_000)
    lfn = f"mw-{real_site.tag}.dat"
    (real_site.work / lfn).write_bytes(data)
    out = FileSpec(filetype="output", scope="tests", lfn=lfn, ddmendpoint="PILOT_XRD")
    StageOutClient(real_site.info, acopytools={"pw": ["xrdcp"]}, retry_policy=FAST).transfer(
        [out], activity="pw", workdir=str(real_site.work))
    assert out.status == "transferred" and out.surl.startswith("root://")
    with open(real_site.disk_path("PILOT_XRD", "tests", lfn), "rb") as handle:
        assert handle.read() == data
    back = real_site.work / "back"
    back.mkdir()
    spec = FileSpec(type="input", scope="tests", lfn=lfn, checksum={"adler32": adler(data)}, filesize=len(data),
                    ddmendpoint="PILOT_XRD", workdir=str(back), replicas=[{"ddmendpoint": "PILOT_XRD", "domain": "lan",
                                                                           "pfn": out.surl}])
    StageInClient(real_site.info, acopytools={"pr": ["xrdcp"]}, retry_policy=FAST).transfer(
        [spec], activity="pr", workdir=str(real_site.work), use_bulk=False)
    assert spec.status == "transferred" and (back / lfn).read_bytes() == data
    host = os.readlink("/proc/self/ns/pid")
    seen = contained_xrdcp.read_text().split()
    assert seen and all(ns != host for ns in seen), (seen, host)  # every xrdcp ran in the container
    assert "transfer command runs in the middleware container (bwrap)" in caplog.text


def test_without_middleware_entry_commands_run_on_the_host(real_site, contained_xrdcp):
    real_site.info.queuedata.container_type = {"pilot": "bwrap"}  # a payload container only
    data = os.urandom(1000)
    lfn = f"host-{real_site.tag}.dat"
    (real_site.work / lfn).write_bytes(data)
    out = FileSpec(filetype="output", scope="tests", lfn=lfn, ddmendpoint="PILOT_XRD")
    StageOutClient(real_site.info, acopytools={"pw": ["xrdcp"]}, retry_policy=FAST).transfer(
        [out], activity="pw", workdir=str(real_site.work))
    assert out.status == "transferred"
    assert set(contained_xrdcp.read_text().split()) == {os.readlink("/proc/self/ns/pid")}


def test_unknown_runtime_fails_the_transfer_with_its_code(real_site, contained_xrdcp):
    real_site.info.queuedata.container_type = {"middleware": "docker"}
    lfn = f"bad-{real_site.tag}.dat"
    (real_site.work / lfn).write_bytes(b"x")
    out = FileSpec(filetype="output", scope="tests", lfn=lfn, ddmendpoint="PILOT_XRD")
    with pytest.raises(PilotException):
        StageOutClient(real_site.info, acopytools={"pw": ["xrdcp"]}, retry_policy=FAST).transfer(
            [out], activity="pw", workdir=str(real_site.work))
    assert out.status == "failed" and out.status_code == 1384
    assert not contained_xrdcp.exists()
