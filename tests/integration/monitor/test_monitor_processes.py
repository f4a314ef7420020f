"""The monitor against real payloads under the payload guard: memory sampling, CPU time of the whole
tree, the tree killer (daemons, new sessions, nothing else signalled), stopped payloads, gdb, prmon."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from pilot.control.monitoring.base import WatchedJob
from pilot.control.monitoring.debug import DebugOutput
from pilot.control.monitoring.memory import MemorySampler, choose_monitor
from pilot.control.monitoring.suspend import tree_is_stopped
from pilot.control.payloads.generic import PayloadExecutor
from pilot.info.jobdata import JobData
from pilot.util.config import config
from pilot.util.memorymonitor import COLUMNS, MemoryMonitor, Prmon
from pilot.util.processes import is_alive, tree_table

PY = sys.executable


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def payload(tmp_path, monkeypatch):
    """Start a shell line under the payload guard; yields a starter, kills leftovers at the end.

    These tests find the payload's processes by the PIDs it writes, so they run the guard in its
    fallback mode (child subreaper, no PID namespace: ``process_isolation = off``), the one where the
    pilot's own tree killer does the work. The namespace mode: tests/unit/util/test_payload_guard_pidns.py
    and tests/security.
    """
    monkeypatch.setattr(config, "_overrides", copy.deepcopy(config._overrides))
    config.set("Payload", "process_isolation", "off")
    started = []

    def start(line: str, grace: float = 2.0) -> PayloadExecutor:
        workdir = tmp_path / f"PanDA_Pilot-{len(started) + 1}"
        workdir.mkdir()
        job = JobData(jobid=str(len(started) + 1), workdir=str(workdir))
        user = SimpleNamespace(module=lambda name: SimpleNamespace())
        executor = PayloadExecutor(job, user, env=dict(os.environ), grace=grace)
        executor.start(line)
        started.append(executor)
        return executor

    yield start
    for executor in started:
        if executor.proc is not None and executor.proc.poll() is None:
            executor.kill("test teardown")
            executor.proc.wait(30)


def read_pid(path: Path, timeout: float = 10.0) -> int:
    assert wait_until(lambda: path.exists() and path.read_text().strip(), timeout), f"{path} not written"
    return int(path.read_text().split()[0])


# ---------------------------------------------------------------------------- memory monitor
def test_memory_monitor_samples_the_payload_tree(payload):
    ex = payload(f"{PY} -c \"import time; x = b'x' * (60 * 1024 * 1024); open('w.dat', 'wb').write(b'y' * 3000000);"
                 f" time.sleep(3)\" & wait")
    workdir = Path(ex.job.workdir)
    monitor = MemoryMonitor(ex.proc.pid, str(workdir))
    assert wait_until(lambda: (monitor.sample() or {}).get("pss", 0) > 50 * 1024 and
                      monitor.last_row["wchar"] >= 3000000, 10)
    row = monitor.last_row
    assert row["nprocs"] >= 2 and row["rss"] >= row["pss"] > 50 * 1024 and row["vmem"] >= row["rss"]
    ex.wait()
    assert monitor.sample() is None  # the tree is gone
    lines = (workdir / "memory_monitor_output.txt").read_text().splitlines()
    assert lines[0].split("\t") == list(COLUMNS) and len(lines) >= 2
    summary = json.loads((workdir / "memory_monitor_summary.json").read_text())
    assert summary["Max"]["pss"] > 50 * 1024 and summary["Max"]["wchar"] >= 3000000
    assert set(summary["Avg"]) >= {"pss", "rss", "vmem", "swap", "rchar", "wchar"}


def test_memory_sampler_uses_the_plugin_to_fill_heartbeat_fields(payload, tmp_path):
    from pilot.user.generic import utilities

    ex = payload(f"{PY} -c \"import time; x = b'x' * (30 * 1024 * 1024); time.sleep(2)\"")
    ctx = SimpleNamespace(user=SimpleNamespace(module=lambda name: utilities), get_queuedata=lambda: None)
    watched = WatchedJob(ctx, ex.job, ex)
    sampler = MemorySampler(watched, MemoryMonitor(ex.proc.pid, ex.job.workdir))
    assert wait_until(lambda: sampler.run(time.monotonic()) is None and ex.job.memory_summary.get(
        "maxPSS", 0) > 25 * 1024, 10)
    assert {"maxRSS", "maxVMEM", "avgPSS", "totRCHAR"} <= set(ex.job.memory_summary)
    ex.wait()


# ---------------------------------------------------------------------------- CPU time
def test_cpu_time_counts_exited_and_double_forked_children(payload):
    burn = f"{PY} -c \"import time; t = time.process_time(); exec('while time.process_time() - t < 0.8: pass')\""
    # a double-forked burner (re-parented to the guard) and a plain child, both finished before the end
    ex = payload(f"( ( {burn} ) & ) ; {burn} ; wait; sleep 0.5")
    samples = []
    while ex.proc.poll() is None:
        cpu = ex.cpu_seconds()
        if cpu is not None:
            samples.append(cpu)
        time.sleep(0.1)
    status = ex.wait()
    assert status["exit_code"] == 0 and status["subreaper"]
    assert status["cpu"] >= 1.4, status
    assert max(samples) >= 1.2  # while running, finished children included


# ---------------------------------------------------------------------------- the tree killer
def test_kill_reaches_daemons_and_nothing_else(payload):
    bystander = subprocess.Popen(["sleep", "60"])  # same user, not the pilot's payload
    ex = payload("setsid sleep 300 & echo $! > daemon.pid; "
                 "( ( trap '' TERM; exec sleep 300 ) & echo $! > grandchild.pid ) ; "
                 f"{PY} -c 'import os, time; os.setsid(); time.sleep(300)' & echo $! > session.pid; "
                 "trap '' TERM; sleep 300", grace=1.0)
    workdir = Path(ex.job.workdir)
    pids = [read_pid(workdir / name) for name in ("daemon.pid", "grandchild.pid", "session.pid")]
    assert all(is_alive(p) for p in pids)
    assert set(pids) <= set(tree_table(ex.proc.pid))  # the guard is their subreaper
    start = time.monotonic()
    ex.kill("test")
    status = ex.wait()
    assert time.monotonic() - start < 10
    assert not any(is_alive(p) for p in pids), [p for p in pids if is_alive(p)]
    assert status["guard_signal"] == signal.SIGTERM
    assert bystander.poll() is None  # untouched
    bystander.kill()
    bystander.wait()


def test_leftover_daemons_are_stopped_when_the_payload_exits(payload):
    ex = payload("( setsid sleep 300 & echo $! > daemon.pid ); echo done")
    status = ex.wait()
    pid = int((Path(ex.job.workdir) / "daemon.pid").read_text())
    assert status["exit_code"] == 0 and not is_alive(pid)


# ---------------------------------------------------------------------------- stopped payload
def test_a_stopped_payload_is_seen_as_stopped(payload):
    ex = payload("echo $$ > payload.pid; sleep 0.2; sleep 30")
    watched = WatchedJob(SimpleNamespace(), ex.job, ex)
    pid = read_pid(Path(ex.job.workdir) / "payload.pid")
    assert not tree_is_stopped(watched)
    for p in [pid] + [q for q in tree_table(pid) if q != pid]:
        os.kill(p, signal.SIGSTOP)
    assert wait_until(lambda: tree_is_stopped(watched), 5)
    for p in tree_table(pid):
        os.kill(p, signal.SIGCONT)
    assert wait_until(lambda: not tree_is_stopped(watched), 5)


# ---------------------------------------------------------------------------- gdb
@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")
def test_gdb_debug_command_writes_a_core_and_asks_for_a_kill(payload):
    ex = payload(f"{PY} -c 'import time; time.sleep(60)'")
    job = ex.job
    watched = WatchedJob(SimpleNamespace(user=None), job, ex)
    assert wait_until(lambda: len(watched.payload_pids()) >= 1, 5)
    job.debug, job.server_command = True, "gdb"
    reason = DebugOutput(watched).refresh()
    cores = list(Path(job.workdir).glob("core.*"))
    assert "gdb" in job.debug_stdout
    if cores:  # ptrace allowed here
        assert reason and "core dump" in reason and "written" in job.debug_stdout
    else:
        assert reason is None and "could not dump" in job.debug_stdout


# ---------------------------------------------------------------------------- prmon
def test_prmon_is_used_when_on_path(payload, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "prmon"
    fake.write_text("#!/bin/sh\n"
                    "echo \"$@\" > prmon.args\n"
                    "echo '{\"Max\": {\"pss\": 4321, \"rss\": 5000}, \"Avg\": {\"pss\": 1000}}' "
                    "> memory_monitor_summary.json\n"
                    "while kill -0 $2 2>/dev/null; do sleep 0.1; done\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    assert Prmon.available()
    ex = payload("sleep 1")
    watched = WatchedJob(SimpleNamespace(user=None), ex.job, ex)
    monitor = choose_monitor(watched)
    assert isinstance(monitor, Prmon)
    workdir = Path(ex.job.workdir)
    assert wait_until(lambda: (workdir / "prmon.args").exists(), 5)
    args = (workdir / "prmon.args").read_text().split()
    assert args[:2] == ["--pid", str(ex.proc.pid)] and "--json-summary" in args and "--interval" in args
    assert wait_until(lambda: monitor.summary().get("Max", {}).get("pss") == 4321, 5)
    ex.wait()
    monitor.stop()
    assert monitor.proc.poll() is not None


def test_kill_of_a_stopped_payload(payload):
    ex = payload("echo $$ > payload.pid; sleep 300", grace=5.0)
    pid = read_pid(Path(ex.job.workdir) / "payload.pid")
    members = [p for p in tree_table(ex.proc.pid) if p != ex.proc.pid]
    for p in members:
        os.kill(p, signal.SIGSTOP)
    start = time.monotonic()
    ex.kill("stopped payload")
    ex.wait()
    assert time.monotonic() - start < 4  # SIGCONT lets it act on SIGTERM: no wait for the grace period
    assert not is_alive(pid) and not any(is_alive(p) for p in members)
