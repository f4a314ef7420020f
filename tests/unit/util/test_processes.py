"""Processes: run_command, tree CPU time, and the tree killer (real processes)."""

import os
import subprocess
import sys
import time

import pytest

from pilot.util.processes import (TreeTracker, is_alive, kill_process_tree, read_stat, run_command,
                                  tree_cpu_seconds)


def test_run_command_output_and_exit_code():
    res = run_command(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert res.exit_code == 3 and res.stdout.strip() == "out" and res.stderr.strip() == "err"
    code, out, err = res
    assert code == 3


def test_run_command_timeout_kills_tree():
    start = time.monotonic()
    res = run_command(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.5)
    assert res.timed_out and res.exit_code == -1
    assert time.monotonic() - start < 10


def test_run_command_timeout_is_bounded_when_an_escaped_process_holds_the_output(monkeypatch):
    import uuid

    from pilot.util import commandrunner, processes

    monkeypatch.setattr(commandrunner, "REAP_TIMEOUT", 1.0)
    mark = f"PILOT_TEST_MARK={uuid.uuid4().hex}"
    env = dict(os.environ, PILOT_TEST_MARK=mark.partition("=")[2])
    start = time.monotonic()
    try:  # the double-forked sleep leaves the tree (re-parented) and keeps stdout open
        res = run_command(["sh", "-c", "(setsid sleep 60 &); sleep 30"], timeout=0.5, env=env)
        assert res.timed_out and res.exit_code == -1
        assert time.monotonic() - start < 20
        escaped = processes.processes_with_environ(mark)
        assert escaped, "the escaped process should still be there (found by its environment)"
    finally:
        for pid in processes.processes_with_environ(mark):
            os.kill(pid, 9)


def test_run_command_missing_binary():
    assert run_command(["/nonexistent/tool"]).exit_code == 127


def test_kill_tree_with_escaped_daemon():
    # the child starts a grandchild in a new session (a classic daemon) and ignores SIGTERM itself
    script = "import os, time, signal, subprocess, sys\n" \
             "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" \
             "subprocess.Popen(['sleep', '60'], start_new_session=True)\n" \
             "time.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    tracker = TreeTracker(proc.pid)
    deadline = time.monotonic() + 5
    while len(tracker.update()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    members = tracker.live()
    assert len(members) == 2
    killed = kill_process_tree(proc.pid, pgrp=proc.pid, grace=0.5, extra=members)
    proc.wait(5)
    assert set(members) <= set(killed)
    assert not any(is_alive(p) for p in members)


def test_tree_cpu_includes_finished_children():
    proc = subprocess.Popen(["sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 2"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and tree_cpu_seconds(proc.pid) < 0.1:
        time.sleep(0.1)
    assert tree_cpu_seconds(proc.pid) > 0.05
    proc.kill()
    proc.wait()


def test_refuses_trees_that_contain_the_pilot():
    with pytest.raises(ValueError):
        kill_process_tree(1, grace=0.1)
    with pytest.raises(ValueError):
        kill_process_tree(os.getppid(), grace=0.1)
    assert read_stat(os.getpid()).pid == os.getpid()
