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

Credential masks (``--mask PATH``, repeated; the pilot chooses the paths): the payload's shell starts
in a private mount namespace where each path shows nothing, a file being covered by a read-only bind
of ``/dev/null``, a directory by an empty read-only tmpfs. The namespace is made in the child just
before exec (``/`` made recursively private first, so nothing propagates to the host); as root with
``CLONE_NEWNS`` alone, otherwise inside a new user namespace that maps only the caller's own uid and
gid, so the payload keeps its ids and cannot undo the mounts. ``--isolation`` says what a failure
means: ``auto`` runs the payload anyway, ``required`` does not start it (exit 126), ``off`` masks
nothing. The status file's ``credentials`` record says what happened.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import threading

from pilot.util.proctree import descendants, kill_process_tree  # stdlib-only: a cheap start per job

PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 0x4000, 1 << 18, 1 << 21
#: statvfs flags a read-only remount of a bind must keep (a user namespace may not drop them)
KEPT_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
              (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME))
#: exit status of a payload that was not started because its credentials could not be masked
MASK_REFUSED = 126
ISOLATION_MODES = ("auto", "required", "off")


def _become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _libc_call(libc, name: str, *args) -> None:
    """Call a libc function that returns 0 on success; raise OSError with its errno otherwise."""
    if getattr(libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        where = " ".join(os.fsdecode(arg) for arg in args[:2] if isinstance(arg, bytes))
        raise OSError(errno, f"{name}({where}): {os.strerror(errno)}")


def _map_own_ids(uid: int, gid: int) -> None:
    """In a fresh user namespace: map the caller's uid and gid to themselves (setgroups denied first)."""
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as handle:
            handle.write(text)


def _mask_path(libc, path: str) -> None:
    """Cover one path: a directory by an empty read-only tmpfs, anything else by a read-only /dev/null."""
    target = os.fsencode(path)
    if os.path.isdir(path):
        flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
        _libc_call(libc, "mount", b"tmpfs", target, b"tmpfs", ctypes.c_ulong(flags), b"mode=0555,size=4k")
        return
    _libc_call(libc, "mount", b"/dev/null", target, None, ctypes.c_ulong(MS_BIND), None)
    kept = os.statvfs(path).f_flag
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY
    for st_flag, ms_flag in KEPT_FLAGS:
        if kept & st_flag:
            flags |= ms_flag
    _libc_call(libc, "mount", None, target, None, ctypes.c_ulong(flags), None)


def mask_credentials(paths: list) -> list:
    """Enter a private mount namespace in which every existing path of ``paths`` is masked; the masked ones.

    Meant for the payload's child just before exec (it changes the calling process). Raises OSError.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0:
        _libc_call(libc, "unshare", CLONE_NEWNS)
    else:
        _libc_call(libc, "unshare", CLONE_NEWUSER | CLONE_NEWNS)
        _map_own_ids(uid, gid)
    _libc_call(libc, "mount", None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None)
    masked = []
    for path in paths:
        if os.path.lexists(path):  # a credential removed since the pilot looked needs no cover
            _mask_path(libc, path)
            masked.append(path)
    return masked


def _masking_preexec(paths: list, mode: str, report_fd: int):
    """The child's last step before exec: mask ``paths``; write what was masked, or the error, to ``report_fd``.

    In ``required`` mode a failure is raised, so the payload is not started.
    """
    def preexec() -> None:
        try:
            masked = mask_credentials(paths)
        except Exception as exc:  # whatever stops the masking is reported; 'auto' runs the payload anyway
            os.write(report_fd, json.dumps({"error": str(exc)[:1000]}).encode())
            if mode == "required":
                raise
            return
        os.write(report_fd, json.dumps({"masked": masked}).encode())

    return preexec


def _read_report(read_fd: int) -> str:
    """What the child wrote to the report pipe ('' when it wrote nothing)."""
    chunks = []
    while True:
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    return b"".join(chunks).decode(errors="replace")


def _write_status(path: str, status: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        json.dump(status, handle)
    os.replace(tmp, path)


class GuardOptions:
    """The guard's command line (read by hand: argparse alone would double the guard's start-up CPU)."""

    __slots__ = ("status", "grace", "stdout", "stderr", "cwd", "mask", "isolation", "command")

    def __init__(self) -> None:
        self.status, self.grace, self.stdout, self.stderr, self.cwd = "", 10.0, None, None, None
        self.mask: list = []
        self.isolation = "auto"
        self.command: list = []


USAGE = ("usage: payloadguard --status FILE [--grace S] [--stdout F] [--stderr F] [--cwd DIR] "
         "[--mask PATH]... [--isolation auto|required|off] -- SHELL LINE")


def _parse(argv: list | None) -> GuardOptions:
    """Options before ``--``, the shell line after it; a usage error exits with status 2."""
    words = list(sys.argv[1:] if argv is None else argv)
    opts = GuardOptions()
    valued = {"--status", "--grace", "--stdout", "--stderr", "--cwd", "--mask", "--isolation"}
    while words:
        word = words.pop(0)
        if word == "--":
            opts.command = ["--"] + words
            break
        name, eq, value = word.partition("=")
        if name not in valued:
            opts.command = [word] + words  # the shell line without a separating --
            break
        if not eq:
            if not words:
                _usage(f"{name} needs a value")
            value = words.pop(0)
        if name == "--mask":
            opts.mask.append(value)
        elif name == "--grace":
            try:
                opts.grace = float(value)
            except ValueError:
                _usage(f"--grace: not a number: {value!r}")
        elif name == "--isolation":
            if value not in ISOLATION_MODES:
                _usage(f"--isolation: one of {', '.join(ISOLATION_MODES)}, not {value!r}")
            opts.isolation = value
        else:
            setattr(opts, name[2:], value)
    if not opts.status:
        _usage("--status is required")
    return opts


def _usage(message: str) -> None:
    sys.stderr.write(f"{USAGE}\npayloadguard: {message}\n")
    raise SystemExit(2)


def main(argv: list | None = None) -> int:
    """Run the payload under guard; return its exit status."""
    args = _parse(argv)
    line = " ".join(args.command[1:] if args.command[:1] == ["--"] else args.command)
    subreaper = _become_subreaper()

    stop = threading.Event()
    received: list = []

    def on_signal(signum, _frame):
        received.append(signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, on_signal)

    proc, credentials, error = _start_payload(args, line)
    if proc is None:
        code = MASK_REFUSED if credentials["error"] and args.isolation == "required" else 127
        _write_status(args.status, {"exit_code": code, "signal": None, "error": error, "cpu": 0.0,
                                    "subreaper": subreaper, "credentials": credentials})
        return code
    status = _supervise(proc.pid, stop, args.grace)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    status.update({"cpu": usage.ru_utime + usage.ru_stime, "cpu_user": usage.ru_utime,
                   "cpu_system": usage.ru_stime, "maxrss_kb": usage.ru_maxrss, "subreaper": subreaper,
                   "guard_signal": received[0] if received else None, "credentials": credentials})
    _write_status(args.status, status)
    if status["signal"]:
        return 128 + status["signal"]
    return status["exit_code"]


def _start_payload(args: GuardOptions, line: str) -> tuple:
    """Start ``bash -c line``, masked as asked: (process or None, credentials record, start error)."""
    paths = list(args.mask) if args.isolation != "off" else []
    credentials = {"mode": args.isolation, "masked": False, "paths": [], "error": ""}
    preexec, read_fd, write_fd = None, None, None
    if paths:
        read_fd, write_fd = os.pipe()
        preexec = _masking_preexec(paths, args.isolation, write_fd)
    out = open(args.stdout, "ab") if args.stdout else None
    err = open(args.stderr, "ab") if args.stderr else None
    proc, error = None, ""
    try:
        proc = subprocess.Popen(["/bin/bash", "-c", line], cwd=args.cwd, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, preexec_fn=preexec)
    except (OSError, subprocess.SubprocessError) as exc:
        error = str(exc)
    finally:
        for handle in (out, err):
            if handle:
                handle.close()
        if write_fd is not None:
            os.close(write_fd)
    if read_fd is not None:
        credentials.update(_mask_report(_read_report(read_fd)))
        if proc is None and credentials["error"]:
            error = f"credentials not masked: {credentials['error']}"
    return proc, credentials, error


def _mask_report(text: str) -> dict:
    """The child's report ('{"masked": [...]}' or '{"error": "..."}') as credentials record fields."""
    try:
        report = json.loads(text) if text else {"error": "the payload process ended before masking"}
    except ValueError:
        report = {"error": f"unreadable masking report: {text[:200]}"}
    if "error" in report:
        return {"masked": False, "paths": [], "error": str(report["error"])}
    return {"masked": True, "paths": list(report.get("masked", [])), "error": ""}


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
