"""The payload guard: the small process between the pilot and a payload, and the payload's boundary.

The pilot starts ``python -m pilot.util.payloadguard --status FILE [--status-fd N] -- <shell line>``
in a new session. The guard

- moves itself into the job's cgroup when the pilot made one (``--cgroup DIR``; the pilot empties
  it with ``cgroup.kill`` when the job ends, whatever the payload did);
- dies with the pilot: ``PR_SET_PDEATHSIG`` (``--pilot-pid``) tells it when the pilot is gone, and
  it then takes the payload with it;
- puts the payload in a PID namespace of its own where the kernel allows it (``--pidns``): the guard
  forks a second process that is the namespace's init (PID 1), mounts a ``/proc`` that shows only
  the namespace, masks the credentials and starts the payload. The payload can neither see nor
  signal nor ptrace the pilot or the outer guard, its signals to its init are ignored, and when
  that init ends the kernel kills every process left in the namespace, so nothing of the payload
  outlives it. As root the namespace is made directly; otherwise inside a user namespace that maps
  only the caller's own uid and gid (the payload keeps its ids and holds no capability);
- otherwise (``--pidns off`` or refused by the kernel) stays the payload's parent as a *child
  subreaper*, so every process the payload forks, even one that double-forks or calls ``setsid``,
  stays its descendant and is stopped with the payload;
- runs the payload as ``--user UID:GID`` when given (the pilot passes it when it runs as root), so
  a root pilot's payload cannot undo the masks or read the pilot's ``/proc`` entries;
- waits for the payload (no polling), reaps every orphan it adopts, and when the payload's main
  process exits, stops whatever the payload left running (SIGTERM, grace, SIGKILL);
- on SIGTERM/SIGINT/SIGHUP/SIGUSR1 from the pilot stops the whole tree at once;
- hands over a JSON status record (exit code, terminating signal, CPU seconds of the whole tree, what
  isolation it got) through the pipe ``--status-fd`` and the file ``--status``, and exits with the
  payload's exit status.

Credential masks (``--mask PATH``, repeated; the pilot chooses the paths): each path shows nothing
to the payload, a file being covered by a read-only bind of ``/dev/null``, a directory by an empty
read-only tmpfs, in a private mount namespace (``/`` made recursively private first, so nothing
propagates to the host). ``--isolation`` says what a failure means: ``auto`` runs the payload
anyway, ``required`` does not start it (exit 126), ``off`` masks nothing. ``--pidns`` has the same
three values for the PID namespace. The status record's ``credentials`` and ``isolation`` entries
say what happened.

The guard is started for every job and its CPU is the pilot's own cost per job, so it loads only
``os``, ``sys``, ``time``, ``ctypes`` and ``resource``: no ``subprocess`` (it forks and execs itself),
no threads (it waits for its signals and for SIGCHLD with ``sigwaitinfo``), no ``json`` (see
:mod:`pilot.util.guardstatus`) and the C ``_signal`` module rather than ``signal`` (whose enums pull
in ``enum`` and ``re``). :mod:`pilot.util.proctree` is loaded only when something has to be killed
outside a namespace.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
import time

from pilot.util import payloadns
from pilot.util.payloadns import (_mask_report, enter_pid_namespace, mask_credentials, mask_here,  # noqa: F401
                                  masking_preexec)
from pilot.util.guardstatus import SHORT_ESCAPES, _json_string, json_text, write_status  # noqa: F401

TYPE_CHECKING = False
if TYPE_CHECKING:  # the guard does not load typing at run time (see above); mypy reads these
    import signal
    from typing import Callable, Dict, Iterable, Optional, Tuple

    Preexec = Optional[Callable[[], None]]
    Accept = Callable[[signal.struct_siginfo], bool]
    Reap = Callable[[], bool]
else:
    try:  # the C module behind ``signal``: the same calls and numbers without the enum wrappers
        import _signal as signal
    except ImportError:  # pragma: no cover - another Python implementation
        import signal

PR_SET_CHILD_SUBREAPER = 36
#: exit status of a payload that was not started because its credentials could not be masked
#: (or, with ``--pidns required``, because it could not get a PID namespace of its own)
MASK_REFUSED = 126
#: the parent-death signal: the guard checks that the pilot really is gone (the thread that
#: started the guard may end while the pilot lives on, and the kernel signals that too)
PARENT_GONE = signal.SIGUSR2
ISOLATION_MODES = ("auto", "required", "off")


def _become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


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


class GuardOptions:
    """The guard's command line (read by hand: argparse alone would double the guard's start-up CPU)."""

    __slots__ = ("status", "status_fd", "grace", "stdout", "stderr", "cwd", "mask", "isolation", "pidns", "user",
                 "pilot_pid", "cgroup", "command", "nice", "ionice")

    def __init__(self) -> None:
        self.status, self.grace = "", 10.0
        self.stdout: Optional[str] = None
        self.stderr: Optional[str] = None
        self.cwd: Optional[str] = None
        self.status_fd: Optional[int] = None
        self.mask: list = []
        self.isolation = "auto"
        self.pidns = "off"
        self.user: Optional[Tuple[int, int]] = None  # (uid, gid) the payload runs as, or None: the guard's own
        self.pilot_pid = 0
        self.cgroup = ""
        self.command: list = []
        self.nice = 0  # niceness increment of the payload (OneBox background jobs)
        self.ionice = 0  # I/O scheduling class of the payload (3: idle), 0: unchanged


USAGE = ("usage: payloadguard --status FILE [--status-fd N] [--grace S] [--stdout F] [--stderr F] [--cwd DIR] "
         "[--mask PATH]... [--isolation auto|required|off] [--pidns auto|required|off] [--user UID:GID] "
         "[--pilot-pid PID] [--cgroup DIR] [--nice N] [--ionice CLASS] -- SHELL LINE")
VALUED = {"--status", "--status-fd", "--grace", "--stdout", "--stderr", "--cwd", "--mask", "--isolation", "--pidns",
          "--user", "--pilot-pid", "--cgroup", "--nice", "--ionice"}


def _parse(argv: list | None) -> GuardOptions:
    """Options before ``--``, the shell line after it; a usage error exits with status 2."""
    words = list(sys.argv[1:] if argv is None else argv)
    opts = GuardOptions()
    while words:
        word = words.pop(0)
        if word == "--":
            opts.command = ["--"] + words
            break
        name, eq, value = word.partition("=")
        if name not in VALUED:
            opts.command = [word] + words  # the shell line without a separating --
            break
        if not eq:
            if not words:
                _usage(f"{name} needs a value")
            value = words.pop(0)
        _set_option(opts, name, value)
    if not opts.status and opts.status_fd is None:
        _usage("--status or --status-fd is required")
    return opts


def _set_option(opts: GuardOptions, name: str, value: str) -> None:
    if name == "--mask":
        opts.mask.append(value)
    elif name in ("--grace", "--status-fd", "--pilot-pid", "--nice", "--ionice"):
        try:
            number = float(value) if name == "--grace" else int(value)
        except ValueError:
            _usage(f"{name}: not a number: {value!r}")
        setattr(opts, name[2:].replace("-", "_"), number)
    elif name in ("--isolation", "--pidns"):
        if value not in ISOLATION_MODES:
            _usage(f"{name}: one of {', '.join(ISOLATION_MODES)}, not {value!r}")
        setattr(opts, name[2:], value)
    elif name == "--user":
        uid, _, gid = value.partition(":")
        if not uid.isdigit() or not (gid or uid).isdigit():
            _usage(f"--user: UID:GID, not {value!r}")
        opts.user = (int(uid), int(gid or uid))
    else:
        setattr(opts, name[2:], value)


def _usage(message: str) -> None:
    sys.stderr.write(f"{USAGE}\npayloadguard: {message}\n")
    raise SystemExit(2)


#: the signals on which the guard stops the whole payload tree
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
#: signals Python ignores at start-up; the payload gets them back at their default (as subprocess does)
RESTORED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name))


def main(argv: list | None = None) -> int:
    """Run the payload under guard; return its exit status."""
    args = _parse(argv)
    line = " ".join(args.command[1:] if args.command[:1] == ["--"] else args.command)
    isolation: Dict[str, object] = {"pidns": False, "mode": args.pidns, "kind": "", "proc": False,
                                    "user": list(args.user or ()),
                                    "cgroup": "", "error": ""}
    if args.cgroup:
        try:
            payloadns.join_cgroup(args.cgroup)  # before any fork: every process of the job is in it
            isolation["cgroup"] = args.cgroup
        except OSError as exc:
            isolation["error"] = f"cgroup: {exc}"
    # The stop signals, SIGCHLD and the parent-death signal are blocked and taken with sigwaitinfo:
    # no handler, no thread, nothing lost between two waits. The payload starts with the old mask.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # an inherited SIG_IGN would reap the children for us
    watched = {signal.SIGCHLD, PARENT_GONE, *STOP_SIGNALS}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    if args.pilot_pid:
        payloadns.set_parent_death_signal(PARENT_GONE)
        if os.getppid() != args.pilot_pid:  # gone before the request took effect
            return _not_started(args, 128 + signal.SIGKILL, "the pilot ended before the payload started",
                                isolation=isolation)
    if args.pidns != "off":
        try:
            isolation["kind"] = enter_pid_namespace()
        except OSError as exc:
            isolation["error"] = f"no PID namespace: {exc}"
            if args.pidns == "required":
                return _not_started(args, MASK_REFUSED, f"process isolation required but failed: {exc}",
                                    isolation=isolation)
        else:
            isolation["pidns"] = True
            return _run_outer(args, line, old_mask, watched, isolation)
    return _run_single(args, line, old_mask, watched, isolation)


def _not_started(args: GuardOptions, code: int, error: str, **record: object) -> int:
    status: Dict[str, object] = {"exit_code": code, "signal": None, "error": error, "cpu": 0.0}
    status.update(record)
    write_status(args.status, args.status_fd, status)
    return code


def _pilot_gone(args: GuardOptions) -> bool:
    """After the parent-death signal: is the pilot really gone (not just the thread that started us)?"""
    return os.getppid() != args.pilot_pid


# ------------------------------------------------------------------------------ without a PID namespace
def _run_single(args: GuardOptions, line: str, old_mask: set, watched: set, isolation: dict) -> int:
    """The payload as the guard's own child, the guard its subreaper."""
    subreaper = _become_subreaper()
    pid, credentials, error = _start_payload(args, line, old_mask)
    if pid is None:
        code = MASK_REFUSED if credentials["error"] and args.isolation == "required" else 127
        return _not_started(args, code, error, subreaper=subreaper, credentials=credentials, isolation=isolation)

    def accept(info: signal.struct_siginfo) -> bool:
        return info.si_signo != PARENT_GONE or _pilot_gone(args)

    received: list = []
    status = _supervise(pid, watched, received, args.grace, _stop_tree, accept)
    return _finish(args, status, received, subreaper=subreaper, credentials=credentials, isolation=isolation)


def _finish(args: GuardOptions, status: dict, received: list, **record: object) -> int:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    status.update({"cpu": usage.ru_utime + usage.ru_stime, "cpu_user": usage.ru_utime,
                   "cpu_system": usage.ru_stime, "maxrss_kb": usage.ru_maxrss,
                   "guard_signal": received[0] if received else None})
    status.update(record)
    write_status(args.status, args.status_fd, status)
    if status["signal"]:
        return 128 + status["signal"]
    return status["exit_code"]


# ------------------------------------------------------------------------------ in a PID namespace
def _run_outer(args: GuardOptions, line: str, old_mask: set, watched: set, isolation: dict) -> int:
    """The guard outside the namespace: fork its init, pass stop signals on, end it when the pilot is gone.

    The init has SIGKILL as its parent-death signal, so whatever ends this process ends the
    namespace too; a stop the init does not finish in ``grace`` + 5 s ends with SIGKILL.
    """
    alive_r, alive_w = os.pipe()  # end of file on alive_r: this process is gone
    init = os.fork()
    if init == 0:  # pragma: no cover - the namespace's init (measured by the guard tests, not by coverage)
        code = 127
        try:
            os.close(alive_w)
            code = _run_init(args, line, old_mask, watched, isolation, alive_r)
        finally:
            os._exit(code)
    os.close(alive_r)
    received: list = []
    deadline = None
    while True:
        pid, wstatus = os.waitpid(init, os.WNOHANG)
        if pid:
            break
        if deadline is None:
            info = signal.sigwaitinfo(watched)
        else:
            timed = signal.sigtimedwait(watched, max(0.0, deadline - time.monotonic()))
            if timed is None:  # the init did not stop its namespace in time
                os.kill(init, signal.SIGKILL)
                deadline = None
                continue
            info = timed
        if info.si_signo == signal.SIGCHLD:
            continue
        if info.si_signo == PARENT_GONE:
            if _pilot_gone(args):
                os.kill(init, signal.SIGKILL)  # the kernel empties the namespace with it
            continue
        received.append(info.si_signo)
        os.kill(init, signal.SIGTERM)
        if deadline is None:
            deadline = time.monotonic() + args.grace + 5.0
    if os.WIFEXITED(wstatus):
        return os.WEXITSTATUS(wstatus)  # the init wrote the status record
    sig = os.WTERMSIG(wstatus)
    return _not_started(args, 128 + sig, f"the payload's namespace was ended by signal {sig}", signal=sig,
                        guard_signal=received[0] if received else None, isolation=isolation)


def _run_init(args: GuardOptions, line: str, old_mask: set, watched: set, isolation: dict,
              alive_fd: int) -> int:  # pragma: no cover - runs as a namespace's init
    """PID 1 of the payload's namespace: mount its /proc, mask the credentials, run and reap the payload.

    ``alive_fd``: the read end of a pipe the outer guard holds open (its parent is outside the
    namespace, so ``getppid()`` says 0 here whether it lives or not).
    """
    payloadns.set_parent_death_signal(signal.SIGKILL)
    os.set_blocking(alive_fd, False)
    try:
        gone = os.read(alive_fd, 1) == b""  # end of file: the outer guard ended before the request took effect
    except BlockingIOError:
        gone = False
    os.close(alive_fd)
    if gone:
        return 128 + signal.SIGKILL
    payloadns.set_dumpable(False)  # a payload of the same uid cannot ptrace its init
    for sig in watched:  # a namespace's init gets only the signals it handles (they stay blocked)
        signal.signal(sig, _no_op)
    try:
        payloadns.mount_namespace_proc()
        isolation["proc"] = True
    except OSError as exc:
        isolation["error"] = f"no private /proc: {exc}"
        if args.pidns == "required":
            return _not_started(args, MASK_REFUSED, f"process isolation required but failed: {exc}",
                                isolation=isolation)
    paths = list(args.mask) if args.isolation != "off" else []
    credentials = {"mode": args.isolation, "masked": False, "paths": [], "error": ""}
    preexec = None
    if paths:
        try:
            credentials.update(masked=True, paths=mask_here(paths))
        except OSError as exc:
            credentials["error"] = str(exc)[:1000]
            if args.isolation == "required":
                return _not_started(args, MASK_REFUSED, f"credentials not masked: {exc}", credentials=credentials,
                                    isolation=isolation)
    if args.user:
        preexec = _drop_to(*args.user)
    pid, error = _open_and_spawn(args, line, preexec, old_mask)
    if pid is None:
        return _not_started(args, 127, error, credentials=credentials, isolation=isolation)

    def accept(info: signal.struct_siginfo) -> bool:
        # signals sent from inside the namespace (the payload) carry its PID; the pilot's carry 0
        return info.si_pid == 0

    received: list = []
    status = _supervise(pid, watched, received, args.grace, _stop_namespace, accept)
    return _finish(args, status, received, subreaper=True, credentials=credentials, isolation=isolation)


def _no_op(*_args: object) -> None:  # pragma: no cover - the signals stay blocked
    return None


def _drop_to(uid: int, gid: int) -> Callable[[], None]:
    """A preexec step: become ``uid``/``gid`` with no supplementary groups (the guard runs as root)."""
    def preexec() -> None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return preexec


#: the ioprio_set system call number per machine (no libc wrapper exists)
IOPRIO_SET = {"x86_64": 251, "aarch64": 30, "ppc64le": 273, "ppc64": 273, "s390x": 282, "i686": 289}


def _lower_priority(nice: int, ioclass: int) -> Preexec:
    """A preexec step: add ``nice`` to the niceness and take I/O class ``ioclass`` (best effort), or None."""
    if not nice and not ioclass:
        return None
    number = IOPRIO_SET.get(os.uname().machine)

    def preexec() -> None:
        if nice:
            os.nice(nice)
        if ioclass and number is not None:  # IOPRIO_WHO_PROCESS (1), this process (0), class << 13
            ctypes.CDLL(None, use_errno=True).syscall(number, 1, 0, ioclass << 13)

    return preexec


def _chain(*steps: Preexec) -> Preexec:
    kept = [step for step in steps if step is not None]
    if not kept:
        return None

    def preexec() -> None:
        for step in kept:
            step()

    return preexec


def _open_and_spawn(args: GuardOptions, line: str, preexec: Preexec,
                    child_mask: Iterable[int]) -> Tuple[Optional[int], str]:
    """Open the payload's stdout/stderr and start ``bash -c line``: (PID, '') or (None, error)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    out = err = None
    try:
        out = os.open(args.stdout, flags, 0o666) if args.stdout else None
        err = os.open(args.stderr, flags, 0o666) if args.stderr else None
        preexec = _chain(_lower_priority(args.nice, args.ionice), preexec)
        return _spawn(["/bin/bash", "-c", line], args.cwd, out, err, preexec, child_mask)
    except OSError as exc:  # no fork (process limit, memory), an output name that is a link
        return None, str(exc)
    finally:
        for fd in (out, err):
            if fd is not None:
                os.close(fd)


def _start_payload(args: GuardOptions, line: str, child_mask: Iterable[int] = ()) -> Tuple[Optional[int], dict, str]:
    """Start ``bash -c line``, masked as asked: (PID or None, credentials record, start error).

    ``child_mask``: the signal mask the payload's shell starts with.
    """
    paths = list(args.mask) if args.isolation != "off" else []
    credentials: Dict[str, object] = {"mode": args.isolation, "masked": False, "paths": [], "error": ""}
    preexec: Preexec = None
    read_fd: Optional[int] = None
    write_fd: Optional[int] = None
    if paths:
        read_fd, write_fd = os.pipe()
        preexec = masking_preexec(paths, args.isolation, write_fd)
    preexec = _chain(preexec, _drop_to(*args.user) if args.user else None)
    try:
        pid, error = _open_and_spawn(args, line, preexec, child_mask)
    finally:
        if write_fd is not None:
            os.close(write_fd)
    if read_fd is not None:
        credentials.update(_mask_report(_read_report(read_fd)))
        if pid is None and credentials["error"]:
            error = f"credentials not masked: {credentials['error']}"
    return pid, credentials, error


def _spawn(argv: list, cwd: Optional[str], out: Optional[int], err: Optional[int], preexec: Preexec,
           child_mask: Iterable[int]) -> Tuple[Optional[int], str]:
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


def _child(argv: list, cwd: Optional[str], out: Optional[int], err: Optional[int], preexec: Preexec,
           child_mask: Iterable[int], report_w: int) -> None:  # pragma: no cover
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


def _supervise(payload: int, watched: set, received: list, grace: float,
               stop_tree: Callable[[float, Reap], None], accept: Accept) -> dict:
    """Reap children until the payload is gone and nothing of its tree is left.

    Stops the tree once (``stop_tree(grace, reap)``) when an accepted stop signal arrives or when the
    payload's main process ends and leaves something running. Accepted signals go to ``received``.
    """
    state: Dict[str, Optional[int]] = {"exit_code": None, "signal": None, "stop": False}

    def reap() -> bool:
        """Reap whatever has ended; True while children are left."""
        try:
            while True:
                pid, wstatus, _ = os.wait4(-1, os.WNOHANG)
                if pid == 0:
                    return True
                if pid == payload:
                    if os.WIFSIGNALED(wstatus):
                        sig = os.WTERMSIG(wstatus)
                        state["signal"] = sig
                        state["exit_code"] = 128 + sig
                    else:
                        state["exit_code"] = os.WEXITSTATUS(wstatus)
                    # the payload's main process is done: whatever it left behind goes too
                    if _has_children():
                        state["stop"] = True
        except ChildProcessError:
            return False

    stopped = False
    while reap():
        if state["stop"] and not stopped:
            stopped = True
            stop_tree(grace, reap)  # blocks for the grace period at most
            continue
        info = signal.sigwaitinfo(watched)
        if info.si_signo != signal.SIGCHLD and accept(info):
            received.append(info.si_signo)
            state["stop"] = True
    return {"exit_code": state["exit_code"] if state["exit_code"] is not None else -1, "signal": state["signal"]}


def _stop_tree(grace: float, reap: Optional[Reap] = None) -> None:
    from pilot.util.proctree import kill_process_tree

    # the guard is the root of the tree; kill_process_tree never signals the calling process
    kill_process_tree(os.getpid(), grace=grace)


def _stop_namespace(grace: float, reap: Reap) -> None:  # pragma: no cover - runs as a namespace's init
    """As the namespace's init: SIGTERM every process in it, ``grace`` seconds, then SIGKILL the rest."""
    payloadns.kill_namespace(signal.SIGTERM)
    payloadns.kill_namespace(signal.SIGCONT)
    deadline = time.monotonic() + grace
    while reap():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            payloadns.kill_namespace(signal.SIGKILL)
            return
        signal.sigtimedwait({signal.SIGCHLD}, remaining)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
