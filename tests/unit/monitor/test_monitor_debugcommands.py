"""Server debug commands: parsed without a shell, options allow-listed, paths confined to the work dir."""

import os
import subprocess
import sys

import pytest

from pilot.util.debugcommands import (DebugCommand, gdb_target, is_debug_command, newest_payload_log,
                                      parse_debug_command, run_debug_command)


@pytest.fixture
def workdir(tmp_path):
    wd = tmp_path / "PanDA_Pilot-1"
    wd.mkdir()
    (wd / "payload.stdout").write_text("".join(f"line {i}\n" for i in range(100)))
    (wd / "sub").mkdir()
    (wd / "sub" / "f.txt").write_text("x")
    return wd


@pytest.mark.parametrize("text, verb", [
    ("ls -l", "ls"), ("ls -ltr sub", "ls"), ("tail -n 20 payload.stdout", "tail"), ("tail -20", "tail"),
    ("tail --lines=5 payload.stdout", "tail"), ("du -sh .", "du"), ("du --max-depth=1", "du"), ("ps aux", "ps"),
    ("ps", "ps"), ("gdb --pid 12", "gdb"), ("ls 'sub'", "ls"),
])
def test_accepted(workdir, text, verb):
    cmd = parse_debug_command(text, str(workdir))
    assert cmd.verb == verb


@pytest.mark.parametrize("text", [
    "ls; rm -rf /", "ls && touch x", "ls | sh", "tail $(id)", "tail `id`", "ls > x", "ls\nrm x",
    "rm -rf .", "cat /etc/passwd", "/bin/ls -l", "tail -f payload.stdout", "tail /etc/passwd", "ls ../..",
    "ls ../../..", "du --files0-from=/etc/hosts", "du -X /etc/hosts", "tail -n x payload.stdout",
    "ls --color=always", "gdb --pid=abc", "ls 'unterminated",
])
def test_refused(workdir, text):
    with pytest.raises(ValueError):
        parse_debug_command(text, str(workdir))


def test_symlink_out_of_the_workdir_is_refused(workdir, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("do not show")
    os.symlink(secret, workdir / "link")
    with pytest.raises(ValueError):
        parse_debug_command("tail link", str(workdir))


def test_paths_are_resolved_and_defaults_added(workdir):
    assert parse_debug_command("ls -l", str(workdir)).args == ["-l", os.path.realpath(workdir)]
    tail = parse_debug_command("tail -n 3", str(workdir))
    assert tail.args == ["-n", "3", os.path.realpath(workdir / "payload.stdout")]
    assert parse_debug_command("gdb -p 77", str(workdir)).pid == 77
    assert parse_debug_command("gdb", str(workdir)).pid is None


def test_is_debug_command():
    assert is_debug_command("tail -n 5 x") and is_debug_command("ps") and is_debug_command("ls -l")
    assert not is_debug_command("debug") and not is_debug_command("tobekilled") and not is_debug_command("")
    assert not is_debug_command("rm -rf .") and not is_debug_command("lsof")
    assert is_debug_command("ls; touch x")  # recognised, so that it can be refused visibly


def test_run_tail_and_ls_without_a_shell(workdir):
    out = run_debug_command(parse_debug_command("tail -n 2 payload.stdout", str(workdir)), str(workdir), [])
    assert out == "line 98\nline 99\n"
    # a file name that a shell would expand does not expand: it is just an (absent) file
    (workdir / "$(touch pwned)").write_text("harmless")
    out = run_debug_command(parse_debug_command("ls -1", str(workdir)), str(workdir), [])
    assert "payload.stdout" in out and "sub" in out
    assert not (workdir / "pwned").exists()


def test_ps_shows_only_the_payload(workdir):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        out = run_debug_command(DebugCommand("ps"), str(workdir), [proc.pid])
        lines = out.strip().splitlines()
        assert lines[0].split()[0] == "PID" and len(lines) == 2 and str(proc.pid) in lines[1]
        assert "no payload process" in run_debug_command(DebugCommand("ps"), str(workdir), [])
    finally:
        proc.kill()
        proc.wait()


def test_gdb_target_must_be_a_payload_process(workdir):
    assert gdb_target(DebugCommand("gdb", pid=5), [5, 6]) == 5
    assert gdb_target(DebugCommand("gdb", pid=1), [5, 6]) is None
    assert gdb_target(DebugCommand("gdb"), [5, 6], {5: 100, 6: 10}) == 5
    assert gdb_target(DebugCommand("gdb"), []) is None
    out = run_debug_command(DebugCommand("gdb", pid=1), str(workdir), [5])
    assert "not part of the payload" in out or "not installed" in out


def test_newest_payload_log(workdir):
    assert newest_payload_log(str(workdir)).endswith("payload.stdout")
    log = workdir / "log.generate"
    log.write_text("new")
    os.utime(log, (2e9, 2e9))
    assert newest_payload_log(str(workdir)) == str(log)
    assert newest_payload_log(str(workdir / "missing")) == ""
