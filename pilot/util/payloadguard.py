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

The guard is started for every job and its CPU is the pilot's own cost per job, so it loads only
``os``, ``sys``, ``ctypes`` and ``resource``: no ``subprocess`` (it forks and execs itself), no
threads (it waits for its signals and for SIGCHLD with ``sigwaitinfo``), no ``json`` (it writes its
small status record itself) and the C ``_signal`` module rather than ``signal`` (whose enums pull in
``enum`` and ``re``). :mod:`pilot.util.proctree` is loaded only when something has to be killed.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys

try:  # the C module behind ``signal``: the same calls and numbers without the enum wrappers
    import _signal as signal
except ImportError:  # pragma: no cover - another Python implementation
    import signal  # type: ignore[no-redef]

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
            os.write(report_fd, b"error\0" + str(exc)[:1000].encode(errors="replace"))
            if mode == "required":
                raise
            return
        os.write(report_fd, b"\0".join([b"masked"] + [os.fsencode(path) for path in masked]))

    return preexec


def _read_report(read_fd: int) -> bytes:
    """What the child wrote to the report pipe (b'' when it wrote nothing); closes ``read_fd``."""
    chunks = []
    while True:
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    return b"".join(chunks)


#: the characters json.dumps escapes with a letter
SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _json_string(text: str) -> str:
    """``text`` as a JSON string, escaped as ``json.dumps`` does (non-ASCII as ``\\uXXXX``)."""
    out = []
    for char in text:
        code = ord(char)
        if char in SHORT_ESCAPES:
            out.append(SHORT_ESCAPES[char])
        elif 0x20 <= code < 0x7f:
            out.append(char)
        elif code > 0xffff:
            code -= 0x10000
            out.append(f"\\u{0xd800 | (code >> 10):04x}\\u{0xdc00 | (code & 0x3ff):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return '"' + "".join(out) + '"'


def json_text(value) -> str:
    """The JSON text of the status record's values (None, bool, int, float, str, list, dict).

    The guard's own small encoder: ``import json`` alone (with the ``re`` it loads) would cost more
    than half of the rest of the guard's start-up.
    """
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(value)]
        return float.__repr__(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_json_string(str(key))}: {json_text(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(json_text(item) for item in value) + "]"
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_status(path: str, status: dict) -> None:
    """Write the status record; on a full disk (or any write error) leave it out: the exit status says it."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w") as handle:
            handle.write(json_text(status))
        os.replace(tmp, path)
    except OSError as exc:
        sys.stderr.write(f"payloadguard: cannot write the status file {path}: {exc}\n")
        try:
            os.unlink(tmp)
        except OSError:
            pass


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

    # The stop signals and SIGCHLD are blocked and taken with sigwaitinfo: no handler, no thread,
    # nothing lost between two waits. The payload's shell gets the mask the guard started with.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # an inherited SIG_IGN would reap the children for us
    watched = {signal.SIGCHLD, *STOP_SIGNALS}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)

    pid, credentials, error = _start_payload(args, line, old_mask)
    if pid is None:
        code = MASK_REFUSED if credentials["error"] and args.isolation == "required" else 127
        _write_status(args.status, {"exit_code": code, "signal": None, "error": error, "cpu": 0.0,
                                    "subreaper": subreaper, "credentials": credentials})
        return code
    received: list = []
    status = _supervise(pid, watched, received, args.grace)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    status.update({"cpu": usage.ru_utime + usage.ru_stime, "cpu_user": usage.ru_utime,
                   "cpu_system": usage.ru_stime, "maxrss_kb": usage.ru_maxrss, "subreaper": subreaper,
                   "guard_signal": received[0] if received else None, "credentials": credentials})
    _write_status(args.status, status)
    if status["signal"]:
        return 128 + status["signal"]
    return status["exit_code"]


#: the signals on which the guard stops the whole payload tree
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
#: signals Python ignores at start-up; the payload gets them back at their default (as subprocess does)
RESTORED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name))


def _start_payload(args: GuardOptions, line: str, child_mask=()) -> tuple:
    """Start ``bash -c line``, masked as asked: (PID or None, credentials record, start error).

    ``child_mask``: the signal mask the payload's shell starts with.
    """
    paths = list(args.mask) if args.isolation != "off" else []
    credentials = {"mode": args.isolation, "masked": False, "paths": [], "error": ""}
    preexec, read_fd, write_fd = None, None, None
    if paths:
        read_fd, write_fd = os.pipe()
        preexec = _masking_preexec(paths, args.isolation, write_fd)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    out = os.open(args.stdout, flags, 0o666) if args.stdout else None
    err = os.open(args.stderr, flags, 0o666) if args.stderr else None
    pid, error = None, ""
    try:
        pid, error = _spawn(["/bin/bash", "-c", line], args.cwd, out, err, preexec, child_mask)
    except OSError as exc:  # no fork (process limit, memory)
        error = str(exc)
    finally:
        for fd in (out, err, write_fd):
            if fd is not None:
                os.close(fd)
    if read_fd is not None:
        credentials.update(_mask_report(_read_report(read_fd)))
        if pid is None and credentials["error"]:
            error = f"credentials not masked: {credentials['error']}"
    return pid, credentials, error


def _spawn(argv: list, cwd, out, err, preexec, child_mask) -> tuple:
    """Fork and exec ``argv`` (stdin /dev/null, stdout/stderr on the given fds): (PID, '') or (None, error).

    What ``subprocess.Popen`` does for the guard, without loading it: the child reports a failure
    before exec (cwd, preexec, exec itself) through a close-on-exec pipe, and the parent reaps it.
    """
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (measured by the guard tests, not by coverage)
        try:
            _child(argv, cwd, out, err, preexec, child_mask, report_w)
        finally:
            os._exit(127)
    os.close(report_w)
    failure = _read_report(report_r)
    if not failure:
        return pid, ""
    os.waitpid(pid, 0)
    where, _, detail = failure.decode(errors="replace").partition(":")
    if where == "preexec":
        return None, "Exception occurred in preexec_fn."
    errno, _, filename = detail.partition(":")
    code = int(errno) if errno.isdigit() else 0
    return None, str(OSError(code, os.strerror(code), filename))


def _child(argv: list, cwd, out, err, preexec, child_mask, report_w: int) -> None:  # pragma: no cover
    """The forked child up to exec; on failure writes ``where:errno:filename`` to ``report_w``."""
    step, filename = "exec", argv[0]
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, target in ((out, 1), (err, 2)):
            if fd is not None:
                os.dup2(fd, target)
        if cwd:
            step, filename = "cwd", cwd
            os.chdir(cwd)
        for sig in RESTORED_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, child_mask)
        if preexec is not None:
            step = "preexec"
            preexec()
        step, filename = "exec", argv[0]
        os.closerange(3, report_w)
        os.closerange(report_w + 1, _max_fd())
        os.execv(argv[0], argv)
    except OSError as exc:
        os.write(report_w, f"{step}:{exc.errno or 0}:{filename}".encode(errors="replace"))
    except BaseException:
        os.write(report_w, f"{step}:0:{filename}".encode(errors="replace"))


def _max_fd() -> int:
    try:
        return max(256, os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 256


def _mask_report(data: bytes) -> dict:
    """The child's report (``masked\\0path...`` or ``error\\0message``) as credentials record fields."""
    if not data:
        return {"masked": False, "paths": [], "error": "the payload process ended before masking"}
    kind, *rest = data.split(b"\0")
    if kind == b"masked":
        return {"masked": True, "paths": [os.fsdecode(path) for path in rest], "error": ""}
    if kind == b"error":
        return {"masked": False, "paths": [], "error": b"\0".join(rest).decode(errors="replace")}
    return {"masked": False, "paths": [], "error": f"unreadable masking report: {data[:200]!r}"}


def _has_children() -> bool:
    """True while the guard has a child left (live or not yet reaped).

    As a subreaper the guard is the parent of every orphan of the payload, so this is "anything of
    the tree left". Reads only the guard's own ``/proc`` entry, not the whole process table.
    """
    pid = os.getpid()
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return bool(handle.read().split())
    except OSError:
        from pilot.util.proctree import descendants

        return bool(descendants(pid))


def _supervise(payload: int, watched: set, received: list, grace: float) -> dict:
    """Reap children until the payload is gone and nothing of its tree is left.

    Stops the tree once (SIGTERM, ``grace``, SIGKILL) when a stop signal arrives or when the
    payload's main process ends and leaves something running. Signals are appended to ``received``.
    """
    exit_code, term_signal = None, None
    stop, stopped = False, False
    while True:
        try:  # reap whatever has ended
            while True:
                pid, wstatus, _ = os.wait4(-1, os.WNOHANG)
                if pid == 0:
                    break
                if pid == payload:
                    if os.WIFSIGNALED(wstatus):
                        term_signal = os.WTERMSIG(wstatus)
                        exit_code = 128 + term_signal
                    else:
                        exit_code = os.WEXITSTATUS(wstatus)
                    # the payload's main process is done: whatever it left behind goes too
                    if _has_children():
                        stop = True
        except ChildProcessError:
            break
        if stop and not stopped:
            stopped = True
            _stop_tree(grace)  # blocks for the grace period at most; the ended ones are reaped next round
            continue
        info = signal.sigwaitinfo(watched)
        if info.si_signo != signal.SIGCHLD:
            received.append(info.si_signo)
            stop = True
    return {"exit_code": exit_code if exit_code is not None else -1,
            "signal": term_signal}


def _stop_tree(grace: float) -> None:
    from pilot.util.proctree import kill_process_tree

    # the guard is the root of the tree; kill_process_tree never signals the calling process
    kill_process_tree(os.getpid(), grace=grace)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
