"""The payload guard's PID namespace: the payload is alone in it, its init is the guard, nothing outlives it.

Each guard runs in its own process (it forks the namespace's init: never inside pytest). The
payloads here are well-behaved probes, not attacks (those run in tests/security, inside a PID
namespace of the test's own).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pilot.util import payloadns
from pilot.util.proctree import is_alive
from tests.payload_procs import host_pids

REPO = Path(__file__).resolve().parents[3]
GUARD = (f"import sys; sys.path.insert(0, {str(REPO)!r}); "
         "from pilot.util.payloadguard import main; sys.exit(main())")


def _run(tmp_path: Path, line: str, *extra: str, timeout: float = 60) -> tuple:
    read_fd, write_fd = os.pipe()
    cmd = [sys.executable, "-S", "-c", GUARD, "--status", str(tmp_path / "guard.json"), "--status-fd", str(write_fd),
           "--grace", "2", "--stdout", str(tmp_path / "out.txt"), "--cwd", str(tmp_path), "--pidns", "auto", *extra,
           "--", line]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True, pass_fds=(write_fd,))
    os.close(write_fd)
    code = proc.wait(timeout)
    with os.fdopen(read_fd, "rb") as handle:
        piped = json.loads(handle.read())
    return code, piped


def test_the_payload_is_alone_in_its_namespace(tmp_path):
    code, status = _run(tmp_path, "echo $$; ls /proc | grep -c -E '^[0-9]+$'; cat /proc/1/cmdline | tr '\\0' ' '; "
                                  "exit 5")
    assert code == 5 and status["exit_code"] == 5
    assert status["isolation"]["pidns"] is True and status["isolation"]["proc"] is True
    assert status["isolation"]["kind"] == ("root" if os.geteuid() == 0 else "user")
    own, count, init = (tmp_path / "out.txt").read_text().splitlines()
    assert own == "2"  # the guard's init is 1, the payload's shell 2
    assert int(count) <= 4  # init, shell, ls, grep
    assert "payloadguard" in init
    # the file record is the same as the piped one
    assert json.loads((tmp_path / "guard.json").read_text()) == status


def test_a_daemon_dies_with_the_payload(tmp_path):
    code, status = _run(tmp_path, "setsid sleep 300 < /dev/null > /dev/null 2>&1 & echo $! > daemon.pid; exit 0")
    assert code == 0 and status["signal"] is None
    pid = int((tmp_path / "daemon.pid").read_text())
    assert host_pids(pid, "sleep 300", cwd=str(tmp_path)) == []


def test_signals_from_inside_do_not_stop_the_init(tmp_path):
    code, status = _run(tmp_path, "kill -TERM 1; kill -HUP 1; kill -9 1; sleep 0.3; echo alive; exit 3")
    assert code == 3 and status["guard_signal"] is None
    assert (tmp_path / "out.txt").read_text().strip() == "alive"


def test_sigterm_from_the_pilot_stops_the_namespace(tmp_path):
    cmd = [sys.executable, "-S", "-c", GUARD, "--status", str(tmp_path / "guard.json"), "--grace", "1",
           "--stdout", str(tmp_path / "out.txt"), "--cwd", str(tmp_path), "--pidns", "auto", "--",
           "trap '' TERM; setsid sleep 300 & echo $! > daemon.pid; sleep 300"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "daemon.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(30) == 128 + signal.SIGKILL  # the shell ignored SIGTERM: killed after the grace
    status = json.loads((tmp_path / "guard.json").read_text())
    assert status["guard_signal"] == signal.SIGTERM and status["signal"] == signal.SIGKILL
    assert host_pids(int((tmp_path / "daemon.pid").read_text()), "sleep 300", cwd=str(tmp_path)) == []


def test_the_guard_dies_with_its_parent(tmp_path):
    """PR_SET_PDEATHSIG: a parent (the pilot) killed with SIGKILL takes guard, init and payload with it."""
    parent = subprocess.Popen([sys.executable, "-c", (  # the guard's parent: the pilot's place
        "import os, subprocess, sys, time\n"
        f"cmd = [sys.executable, '-S', '-c', {GUARD!r}, '--status', 'guard.json', '--pilot-pid', str(os.getpid()),"
        " '--pidns', 'auto', '--cwd', '.', '--', 'echo $$ > payload.pid; sleep 300']\n"
        "p = subprocess.Popen(cmd, start_new_session=True)\n"
        "open('guard.pid', 'w').write(str(p.pid))\n"
        "time.sleep(300)\n")], cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "payload.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        guard = int((tmp_path / "guard.pid").read_text())
        payload = int((tmp_path / "payload.pid").read_text())
        deadline = time.monotonic() + 10
        while not host_pids(payload, "sleep 300", cwd=str(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert host_pids(payload, "sleep 300", cwd=str(tmp_path))
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 20
        while (host_pids(payload, "sleep 300", cwd=str(tmp_path)) or is_alive(guard)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert host_pids(payload, "sleep 300", cwd=str(tmp_path)) == []
        assert not is_alive(guard)
    finally:
        parent.kill()  # the guard, its init and its payload follow it (what the test checks)
        parent.wait(10)


def test_pidns_off_is_the_subreaper(tmp_path):
    cmd = [sys.executable, "-S", "-c", GUARD, "--status", str(tmp_path / "guard.json"), "--stdout",
           str(tmp_path / "out.txt"), "--cwd", str(tmp_path), "--pidns", "off", "--", "echo $$"]
    assert subprocess.run(cmd, timeout=60).returncode == 0
    status = json.loads((tmp_path / "guard.json").read_text())
    assert status["isolation"]["pidns"] is False and status["subreaper"] is True
    assert int((tmp_path / "out.txt").read_text()) > 2


@pytest.mark.skipif(os.geteuid() != 0, reason="moves a process between cgroups: root")
def test_cgroup_kill_empties_the_job_cgroup(tmp_path):
    path = payloadns.make_job_cgroup(f"pilot-test-{os.getpid()}")
    if not path:
        pytest.skip("cgroup v2 is not writable here")
    try:
        proc = subprocess.Popen([sys.executable, "-c", (
            f"import os, time; open({path + '/cgroup.procs'!r}, 'w').write('0'); "
            "os.fork(); os.setsid(); time.sleep(300)")])
        deadline = time.monotonic() + 20
        while len(payloadns.cgroup_pids(path)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(payloadns.cgroup_pids(path)) == 2
        assert payloadns.kill_cgroup(path)
        proc.wait(20)
        deadline = time.monotonic() + 20
        while payloadns.cgroup_pids(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert payloadns.cgroup_pids(path) == []
    finally:
        payloadns.kill_cgroup(path)
        deadline = time.monotonic() + 20
        while not payloadns.remove_cgroup(path) and os.path.isdir(path) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not os.path.isdir(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="makes cgroups: root")
def test_stale_job_cgroups_of_a_gone_pilot_are_removed():
    gone = subprocess.Popen(["true"])
    gone.wait()  # a PID no process has now
    first = payloadns.make_job_cgroup(f"pilot-{gone.pid}-job-1-payload-test")
    if not first:
        pytest.skip("cgroup v2 is not writable here")
    mine = payloadns.make_job_cgroup(payloadns.job_cgroup_name("job 2: payload", "test"))
    try:
        assert mine and os.path.basename(mine).startswith(f"pilot-{os.getpid()}-job-2--payload-")
        assert not os.path.isdir(first)  # the gone pilot's empty cgroup went when the next one was made
        assert os.path.isdir(mine)
    finally:
        for path in (first, mine):
            if path and os.path.isdir(path):
                payloadns.remove_cgroup(path)


def test_kill_namespace_refuses_outside_an_init():
    with pytest.raises(RuntimeError):
        payloadns.kill_namespace(0)  # signal 0 even: never kill(-1) from anything but a namespace's PID 1
