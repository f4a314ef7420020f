"""The payload guard: a tiny parent process that keeps a payload's whole process tree in one place.

The pilot starts ``python -m pilot.util.payloadguard --status FILE -- <shell line>`` in a new
session. The guard makes itself a *child subreaper*, so every process the payload forks, even one
that double-forks or calls ``setsid``, stays its descendant. It then

- waits for the payload (blocking ``wait4``, no polling) and reaps every orphan it adopts;
- when the payload's main process exits, stops whatever the payload left running
  (SIGTERM, grace, SIGKILL) so no daemon outlives the job;
- on SIGTERM/SIGINT/SIGHUP from the pilot, does the same to the whole tree at once;
- writes a JSON status file with the exit code, the terminating signal and the CPU seconds of
  the whole tree (its own children's rusage, which includes every reaped descendant), then exits
  with the payload's exit status.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import threading

from pilot.util.processes import descendants, kill_process_tree

PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _write_status(path: str, status: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        json.dump(status, handle)
    os.replace(tmp, path)


def main(argv: list | None = None) -> int:
    """Run the payload under guard; return its exit status."""
    parser = argparse.ArgumentParser(prog="payloadguard")
    parser.add_argument("--status", required=True, help="JSON status file to write at the end")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")
    parser.add_argument("--stdout", help="payload stdout file")
    parser.add_argument("--stderr", help="payload stderr file")
    parser.add_argument("--cwd", help="payload working directory")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- shell line")
    args = parser.parse_args(argv)
    line = " ".join(args.command[1:] if args.command[:1] == ["--"] else args.command)
    subreaper = _become_subreaper()

    stop = threading.Event()
    received: list = []

    def on_signal(signum, _frame):
        received.append(signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, on_signal)

    out = open(args.stdout, "ab") if args.stdout else None
    err = open(args.stderr, "ab") if args.stderr else None
    try:
        proc = subprocess.Popen(["/bin/bash", "-c", line], cwd=args.cwd, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
    except OSError as exc:
        _write_status(args.status, {"exit_code": 127, "signal": None, "error": str(exc), "cpu": 0.0,
                                    "subreaper": subreaper})
        return 127
    finally:
        for handle in (out, err):
            if handle:
                handle.close()
    status = _supervise(proc.pid, stop, args.grace)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    status.update({"cpu": usage.ru_utime + usage.ru_stime, "cpu_user": usage.ru_utime,
                   "cpu_system": usage.ru_stime, "maxrss_kb": usage.ru_maxrss, "subreaper": subreaper,
                   "guard_signal": received[0] if received else None})
    _write_status(args.status, status)
    if status["signal"]:
        return 128 + status["signal"]
    return status["exit_code"]


def _supervise(payload: int, stop: threading.Event, grace: float) -> dict:
    """Reap children until the payload is gone and nothing of its tree is left."""
    exit_code, term_signal = None, None
    killer = threading.Thread(target=_stop_on_request, args=(stop, grace), daemon=True)
    killer.start()
    while True:
        try:
            pid, wstatus, _ = os.wait4(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries this
            continue
        if pid == payload:
            if os.WIFSIGNALED(wstatus):
                term_signal = os.WTERMSIG(wstatus)
                exit_code = 128 + term_signal
            else:
                exit_code = os.WEXITSTATUS(wstatus)
            # the payload's main process is done: whatever it left behind goes too
            if descendants(os.getpid()):
                stop.set()
    return {"exit_code": exit_code if exit_code is not None else -1,
            "signal": term_signal}


def _stop_on_request(stop: threading.Event, grace: float) -> None:
    stop.wait()
    # the guard is the root of the tree; kill_process_tree never signals the calling process
    kill_process_tree(os.getpid(), grace=grace)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
