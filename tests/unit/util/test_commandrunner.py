"""The one command runner (pilot.util.commandrunner) with real processes: time-out, stop event, output cap."""

import os
import subprocess
import sys
import threading
import time

import pytest

from pilot.util import commandrunner
from pilot.util.commandrunner import BoundedOutput, CommandProcess, run_command, start_process, stop_process
from pilot.util.processes import is_alive

HOLD = "sleep 60"


def _pids(text):
    return [int(word) for word in text.split() if word.isdigit()]


def test_exit_code_output_env_and_cwd(tmp_path):
    res = run_command(["sh", "-c", 'echo "$RUNNER_VAR $(pwd)"; echo err >&2; exit 7'], cwd=str(tmp_path),
                      env={"PATH": os.environ["PATH"], "RUNNER_VAR": "given"})
    assert res.exit_code == 7 and not res.timed_out and not res.cancelled and not res.truncated
    assert res.stdout.strip() == f"given {os.path.realpath(tmp_path)}" and res.stderr.strip() == "err"
    code, out, err = res  # the Pilot 2 execute shape
    assert (code, out, err) == (7, res.stdout, res.stderr)
    assert run_command(["sh", "-c", "kill -9 $$"]).exit_code == -9


def test_a_string_without_shell_is_split_and_with_shell_is_parsed():
    assert run_command("echo a   b").stdout == "a b\n"
    assert run_command("echo a | tr a z", shell=True).stdout == "z\n"


def test_missing_binary_gives_127():
    res = run_command(["/nonexistent/tool", "x"])
    assert res.exit_code == 127 and "cannot execute" in res.stderr


def test_input_text_and_universal_newlines():
    res = run_command(["cat"], input_text="one\r\ntwo\rthree" + "x" * 300000)
    assert res.exit_code == 0 and res.stdout.startswith("one\ntwo\nthree") and len(res.stdout) == 300013


def test_input_the_command_does_not_read_is_dropped():
    res = run_command(["true"], input_text="y" * 1000000, timeout=30)
    assert res.exit_code == 0 and not res.timed_out


def test_timeout_kills_the_group_a_term_ignoring_child_and_a_grandchild_holding_the_pipe():
    # the shell ignores SIGTERM (and so do the sleeps it starts); one sleep leaves the tree by a
    # double fork but stays in the command's process group and holds stdout open
    script = f"trap '' TERM; ({HOLD} & echo $!); {HOLD} & echo $!; wait"
    start = time.monotonic()
    res = run_command(["sh", "-c", script], timeout=1.0, grace=0.5)
    assert time.monotonic() - start < 30
    assert res.timed_out and not res.cancelled and res.exit_code == -1
    assert "command timed out after 1.0 s" in res.stderr
    pids = _pids(res.stdout)
    assert len(pids) == 2, res.stdout
    assert not [pid for pid in pids if is_alive(pid)]


def test_stop_event_ends_the_command_early():
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    start = time.monotonic()
    res = run_command(["sh", "-c", f"echo started; {HOLD}"], timeout=120, stop_event=stop)
    assert time.monotonic() - start < 30
    assert res.cancelled and not res.timed_out and res.exit_code == -1
    assert res.stdout == "started\n" and res.stderr.endswith("cancelled")


def test_a_set_stop_event_does_not_start_waiting():
    stop = threading.Event()
    stop.set()
    assert run_command([sys.executable, "-c", "import time; time.sleep(60)"], stop_event=stop).cancelled


def test_output_over_the_cap_keeps_head_and_tail_with_a_marker():
    script = "head -c 100000 /dev/zero | tr '\\0' a; head -c 100000 /dev/zero | tr '\\0' b; echo; echo end"
    res = run_command(["sh", "-c", script], max_output=1000)
    assert res.exit_code == 0 and res.truncated
    head, marker, tail = res.stdout.partition("[... ")
    assert head.strip() == "a" * 500
    assert marker and "bytes of output dropped ...]" in tail and tail.endswith("b\nend\n")
    assert len(res.stdout) < 1100


def test_bounded_output_counts_what_it_dropped():
    sink = BoundedOutput(10)
    for chunk in (b"0123", b"456789", b"abcdef"):
        sink.add(chunk)
    assert (bytes(sink.head), bytes(sink.tail), sink.dropped) == (b"01234", b"bcdef", 6)


def test_a_command_writing_200_mb_costs_bounded_memory():
    # the peak of the probe's Python heap (tracemalloc), which holds every buffer the runner keeps: the
    # process's ru_maxrss also counts the allocator's and the kernel's accounting, and twice in a whole-suite
    # run under load it read 230-240 MB although the runner kept its 8 MiB (not reproduced alone)
    probe = ("import resource, sys, tracemalloc; tracemalloc.start(); "
             "from pilot.util.commandrunner import run_command; "
             "r = run_command(['sh', '-c', 'head -c 200000000 /dev/zero; echo done >&2']); "
             "print(r.exit_code, len(r.stdout), r.truncated, r.stderr.strip(), "
             "tracemalloc.get_traced_memory()[1] // 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    # a clean environment: the probe's own memory only, not traced by the suite's coverage
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    out = subprocess.run([sys.executable, "-E", "-s", "-c", probe], capture_output=True, text=True, timeout=300,
                         env=env, cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    code, length, truncated, err, peak_kb, maxrss_kb = out.stdout.split()
    assert (code, truncated, err) == ("0", "True", "done"), out.stderr
    assert int(length) < commandrunner.MAX_OUTPUT + 100
    assert int(peak_kb) < 64 * 1024, maxrss_kb  # the 200 MB never sat in memory (about 28 MB here)


def test_processes_run_command_is_the_runner():
    from pilot.util import processes
    assert processes.run_command is run_command and processes.CommandResult is commandrunner.CommandResult


def test_several_started_then_waited_for():
    procs = [CommandProcess(["sh", "-c", f"echo {n}"]) for n in range(3)]
    assert all(proc.start() for proc in procs)
    assert [proc.wait(timeout=30).stdout for proc in procs] == ["0\n", "1\n", "2\n"]


def test_handle_mode_and_its_bounded_stop():
    proc = start_process(f"trap '' TERM; echo $$; {HOLD}", stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdin is None  # /dev/null, not the pilot's stdin
        assert int(proc.stdout.readline()) == proc.pid == os.getpgid(proc.pid)  # its own process group
        start = time.monotonic()
        assert stop_process(proc, grace=0.5) == -9  # SIGTERM ignored: killed after the grace
        assert time.monotonic() - start < 30
    finally:
        proc.stdout.close()


def test_an_exception_in_the_waiting_thread_stops_the_command(monkeypatch):
    proc = CommandProcess(["sh", "-c", f"echo $$; {HOLD}"])
    assert proc.start()

    class Interrupted(Exception):
        pass

    def interrupted(*args):
        raise Interrupted()

    monkeypatch.setattr(proc, "_pump", interrupted)
    with pytest.raises(Interrupted):
        proc.wait(timeout=60)
    assert proc.proc.returncode is not None and not is_alive(proc.pid)
