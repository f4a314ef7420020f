"""Cancelling a transfer while the tool's command runs kills the command's whole process tree."""

import os
import stat
import time
from pathlib import Path

import pytest
from sitetools import adler

from pilot.api.data import StageInClient, StageOutClient
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool.common import run_tool
from pilot.info import FileSpec, InfoService

#: a stand-in tool that starts a child (in its tree) and a grandchild, records their PIDs, then hangs
HANGING_TOOL = """#!/bin/sh
sleep 300 &
echo $! >> "{pids}"
sh -c 'sleep 300' &
echo $! >> "{pids}"
echo $$ >> "{pids}"
wait
"""


def hanging_tool(directory: Path, name: str, pids: Path) -> Path:
    path = directory / name
    path.write_text(HANGING_TOOL.format(pids=pids))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def wait_pids(pidfile: Path, count: int, timeout: float = 10) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pidfile.exists():
            pids = [int(x) for x in pidfile.read_text().split()]
            if len(pids) >= count:
                return pids
        time.sleep(0.02)
    raise AssertionError(f"the tool did not start in {timeout} s")


def gone(pids: list, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if os.path.exists(f"/proc/{p}") and _state(p) not in ("Z", "X")]
        if not alive:
            return True
        time.sleep(0.02)
    return False


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


@pytest.fixture
def hang_site(local_site, monkeypatch, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    pids = tmp_path / "tool.pids"
    for name in ("lsm-get", "lsm-put"):
        hanging_tool(bindir, name, pids)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PILOT_USE_RUCIO_TRACES", "false")
    local_site.info = InfoService().init(local_site.queue)
    local_site.pids = pids
    return local_site


def test_cancel_kills_the_running_stagein_command(hang_site):
    data = b"input bytes"
    hang_site.put("LOCAL_DATADISK", "tests", "slow.dat", data)
    f = FileSpec(filetype="input", scope="tests", lfn="slow.dat", checksum={"adler32": adler(data)},
                 filesize=len(data), workdir=str(hang_site.work))
    handle = StageInClient(hang_site.info, acopytools="lsm").transfer_async([f], activity="pr")
    pids = wait_pids(hang_site.pids, 3)
    assert handle.status == "running"
    start = time.monotonic()
    assert handle.cancel()
    assert handle.wait(15), "the transfer did not end after cancel"
    assert time.monotonic() - start < 5
    assert gone(pids), "processes of the tool survived the cancel"
    assert handle.status == "cancelled"
    with pytest.raises(PilotException) as err:
        handle.result()
    assert err.value.get_error_code() == ErrorCodes.STAGEINFAILED
    assert f.status == "failed" and "cancelled" in f.transfer_error


def test_cancel_kills_the_running_stageout_command(hang_site):
    (hang_site.work / "out.dat").write_bytes(b"output bytes")
    f = FileSpec(filetype="output", scope="tests", lfn="out.dat", workdir=str(hang_site.work))
    handle = StageOutClient(hang_site.info, acopytools="lsm").transfer_async([f], activity="pw")
    pids = wait_pids(hang_site.pids, 3)
    handle.cancel()
    assert handle.wait(15) and gone(pids)
    assert isinstance(handle.exception(), PilotException)
    assert handle.exception().get_error_code() == ErrorCodes.STAGEOUTFAILED


def test_stop_event_kills_a_setup_shell_and_its_children(tmp_path):
    """With a queue ``setup`` line the tool runs under a shell: the shell and everything below it go."""
    import threading

    pids = tmp_path / "tool.pids"
    tool = hanging_tool(tmp_path, "slowcp", pids)
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    start = time.monotonic()
    with pytest.raises(PilotException) as err:
        run_tool([str(tool)], 60, setup="export X=1", stop_event=stop)
    assert time.monotonic() - start < 5
    assert err.value.state == "CANCELLED" and "cancelled" in err.value.diag
    assert gone(wait_pids(pids, 3))


def test_timeout_kills_the_tree(tmp_path):
    pids = tmp_path / "tool.pids"
    tool = hanging_tool(tmp_path, "slowcp", pids)
    with pytest.raises(PilotException) as err:
        run_tool([str(tool)], 1, is_stagein=False)
    assert err.value.get_error_code() == ErrorCodes.STAGEOUTTIMEOUT
    assert gone(wait_pids(pids, 3))
