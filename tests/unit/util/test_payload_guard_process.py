"""The payload guard's own process handling: fork/exec, signals, leftovers, start errors, status record.

The guard runs in its own process (a subreaper that reaps every child: never inside pytest).
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

from pilot.util.payloadguard import _mask_report, json_text

REPO = Path(__file__).resolve().parents[3]
GUARD = (f"import sys; sys.path.insert(0, {str(REPO)!r}); "
         "from pilot.util.payloadguard import main; sys.exit(main())")


def _start(tmp_path: Path, line: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-S", "-c", GUARD, "--status", str(tmp_path / "guard.json"), "--grace", "2",
           "--stdout", str(tmp_path / "out.txt"), "--stderr", str(tmp_path / "err.txt"), *extra, "--", line]
    return subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.mark.parametrize("value", [
    {"exit_code": 0, "signal": None, "cpu": 0.0123, "subreaper": True, "ok": False},
    {"error": 'quote " backslash \\ newline \n tab \t del \x7f', "paths": ["/a/ü", "/b/\U0001f600", "/c/\udcff"]},
    [1, -2, 3.5e-07, [], {}, "", 1e300],
])
def test_status_text_is_what_json_reads_back(value):
    assert json.loads(json_text(value)) == value
    assert json_text(value) == json.dumps(value)


def test_status_text_refuses_other_types():
    with pytest.raises(TypeError):
        json_text({"x": object()})


def test_mask_report_forms():
    assert _mask_report(b"masked\0/p/one\0/p/\xff") == {"masked": True, "paths": ["/p/one", "/p/\udcff"], "error": ""}
    assert _mask_report(b"masked") == {"masked": True, "paths": [], "error": ""}
    assert _mask_report(b"error\0unshare: EPERM")["error"] == "unshare: EPERM"
    assert _mask_report(b"")["error"] == "the payload process ended before masking"
    assert _mask_report(b"junk")["error"].startswith("unreadable masking report")


def test_payload_gets_the_usual_process_setup(tmp_path):
    proc = _start(tmp_path, "pwd; trap -p; read -r x && echo read:$x; echo err >&2; "
                  "grep -E '^Sig(Blk|Ign)' /proc/self/status; ls /proc/$$/fd; exit 7", "--cwd", str(tmp_path))
    assert proc.wait(30) == 7
    status = json.loads((tmp_path / "guard.json").read_text())
    assert status["exit_code"] == 7 and status["signal"] is None and status["guard_signal"] is None
    out = (tmp_path / "out.txt").read_text().split("\n")
    assert out[0] == str(tmp_path)
    assert not any(line.startswith("read:") for line in out)  # stdin is /dev/null
    blocked = next(line for line in out if line.startswith("SigBlk"))
    ignored = next(line for line in out if line.startswith("SigIgn"))
    assert int(blocked.split()[1], 16) == 0  # the guard's blocked signals are not passed on (grep's own mask)
    assert int(ignored.split()[1], 16) & (1 << (signal.SIGPIPE - 1)) == 0  # SIGPIPE back at its default
    fds = [line for line in out[out.index(next(x for x in out if x.startswith("SigIgn"))) + 1:] if line]
    assert sorted(fds) == ["0", "1", "2", "255"] or sorted(fds) == ["0", "1", "2"]  # bash keeps 255 for itself
    assert (tmp_path / "err.txt").read_text() == "err\n"


def test_sigterm_stops_the_whole_tree_and_is_recorded(tmp_path):
    pidfile = tmp_path / "daemon.pid"
    proc = _start(tmp_path, f"(setsid sleep 300 & echo $! > {pidfile}); sleep 300")
    deadline = time.monotonic() + 20
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    daemon = int(pidfile.read_text())
    assert _alive(daemon)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(30) == 128 + signal.SIGTERM
    status = json.loads((tmp_path / "guard.json").read_text())
    assert status["guard_signal"] == signal.SIGTERM and status["signal"] == signal.SIGTERM
    assert not _alive(daemon)


def test_leftovers_are_stopped_when_the_payload_ends(tmp_path):
    pidfile = tmp_path / "daemon.pid"
    proc = _start(tmp_path, f"(setsid sleep 300 & echo $! > {pidfile}); exit 0")
    assert proc.wait(30) == 0
    assert not _alive(int(pidfile.read_text()))
    assert json.loads((tmp_path / "guard.json").read_text())["exit_code"] == 0


def test_a_missing_work_dir_is_a_start_error(tmp_path):
    proc = _start(tmp_path, "true", "--cwd", str(tmp_path / "missing"))
    assert proc.wait(30) == 127
    status = json.loads((tmp_path / "guard.json").read_text())
    assert status["exit_code"] == 127
    assert status["error"] == f"[Errno 2] No such file or directory: '{tmp_path / 'missing'}'"
