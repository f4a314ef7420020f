"""The kernel mechanisms behind the payload boundary: PID namespace, parent-death signal, cgroup v2.

Used by :mod:`pilot.util.payloadguard` (a small interpreter started for every job, so this module
loads only ``os`` and ``ctypes``) and, for the job's cgroup, by :mod:`pilot.util.guardedprocess` in
the pilot. Linux only; every function reports failure (an ``OSError`` or an empty result) rather
than guessing, and the guard falls back to the next mechanism:

1. a PID namespace of the payload's own, the guard's second process as its init (the payload can
   neither see nor signal the pilot or the guard; when that init ends, the kernel kills every
   process left in the namespace);
2. the plain child subreaper (the guard adopts every orphan; a payload that kills its guard is
   stopped by the pilot from what it tracked);
3. either way, where cgroup v2 is writable, a cgroup per job, emptied with ``cgroup.kill``.
"""

from __future__ import annotations

import ctypes
import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # no typing import at run time: the payload guard loads this module
    from typing import Callable

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 0x4000, 1 << 18, 1 << 21
#: statvfs flags a read-only remount of a bind must keep (a user namespace may not drop them)
KEPT_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
              (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME))


def libc() -> ctypes.CDLL:
    """The C library, with errno kept for :func:`_libc_call`."""
    return ctypes.CDLL(None, use_errno=True)


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` when the thread that forked us ends (``PR_SET_PDEATHSIG``)."""
    try:
        return libc().prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def set_dumpable(flag: bool) -> bool:
    """``PR_SET_DUMPABLE``: a non-dumpable process cannot be ptraced by a process of the same uid."""
    try:
        return libc().prctl(PR_SET_DUMPABLE, 1 if flag else 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _libc_call(libc: ctypes.CDLL, name: str, *args: object) -> None:
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


def _mask_path(libc: ctypes.CDLL, path: str) -> None:
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


def enter_pid_namespace() -> str:
    """Make the next child the init of a new PID (and mount) namespace: ``"root"`` or ``"user"``; raises OSError.

    As root ``CLONE_NEWPID | CLONE_NEWNS``; otherwise a user namespace first, mapping only the
    caller's own uid and gid, so the payload keeps its ids and holds no capability after exec.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0:
        _libc_call(libc, "unshare", CLONE_NEWPID | CLONE_NEWNS)
        return "root"
    _libc_call(libc, "unshare", CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS)
    _map_own_ids(uid, gid)
    return "user"


def mask_here(paths: list) -> list:
    """In the namespace's init (its own mount namespace, with the capabilities to mount): mask ``paths``."""
    libc = ctypes.CDLL(None, use_errno=True)
    masked = []
    for path in paths:
        if os.path.lexists(path):
            _mask_path(libc, path)
            masked.append(path)
    return masked


def masking_preexec(paths: list, mode: str, report_fd: int) -> Callable[[], None]:
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


def mount_namespace_proc() -> None:
    """In the new namespaces' init: make ``/`` private and mount a ``/proc`` that shows only this namespace."""
    lib = libc()
    _libc_call(lib, "mount", None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None)
    _libc_call(lib, "mount", b"proc", b"/proc", b"proc", ctypes.c_ulong(MS_NOSUID | MS_NODEV | MS_NOEXEC), None)


def kill_namespace(sig: int) -> None:
    """Signal every process of the caller's PID namespace but the caller: only ever from that namespace's init.

    ``kill(-1)`` from a namespace's PID 1 reaches exactly the processes inside it; from anywhere else
    it would reach every process the caller may signal, so anything but PID 1 is refused.
    """
    if os.getpid() != 1:
        raise RuntimeError("kill_namespace called outside a PID namespace's init: refused")
    try:
        os.kill(-1, sig)
    except ProcessLookupError:  # nothing left to signal
        pass


# ------------------------------------------------------------------------------ cgroup v2
def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> str:
    """Where the cgroup v2 hierarchy is mounted ('' when it is not)."""
    try:
        with open(mountinfo) as handle:
            for line in handle:
                fields = line.split()
                if " - cgroup2 " in line and len(fields) > 4:
                    return fields[4]
    except OSError:
        pass
    return ""


def own_cgroup(cgroup_file: str = "/proc/self/cgroup") -> str:
    """The caller's cgroup v2 path (the ``0::`` line; '' when there is none)."""
    try:
        with open(cgroup_file) as handle:
            for line in handle:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return ""


def make_job_cgroup(name: str) -> str:
    """Create a cgroup ``name`` under the caller's own one; its directory, or '' where cgroup v2 is not writable.

    The processes moved into it later (the guard moves itself) can all be killed at once with
    :func:`kill_cgroup`, whatever they did to their session, process group or parent.
    """
    mount, own = cgroup2_mount(), own_cgroup()
    if not mount or not own:
        return ""
    parent = os.path.join(mount, own.lstrip("/"))
    remove_stale_cgroups(parent)
    path = os.path.join(parent, name)
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        pass
    except OSError:
        return ""
    if not os.access(os.path.join(path, "cgroup.procs"), os.W_OK):
        remove_cgroup(path)
        return ""
    return path


#: job cgroups are named ``pilot-<pilot PID>-...``: a stale one belongs to a pilot that is gone
CGROUP_PREFIX = "pilot-"


def job_cgroup_name(label: str, tag: str) -> str:
    """The name of a job's cgroup: the pilot's PID first, so a later pilot can tell a stale one."""
    clean = "".join(char if char.isalnum() else "-" for char in label)
    return f"{CGROUP_PREFIX}{os.getpid()}-{clean}-{tag}"


def remove_stale_cgroups(parent: str) -> list:
    """Remove the empty job cgroups under ``parent`` left by pilots that no longer run (SIGKILLed).

    Only ``pilot-<PID>-...`` directories whose pilot PID is gone and that hold no process; the
    removed paths.
    """
    removed: list = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        pid = name[len(CGROUP_PREFIX):].split("-", 1)[0]
        if not name.startswith(CGROUP_PREFIX) or not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
            continue
        path = os.path.join(parent, name)
        if not cgroup_pids(path) and remove_cgroup(path):
            removed.append(path)
    return removed


def join_cgroup(path: str) -> None:
    """Move the calling process into the cgroup at ``path`` (raises OSError)."""
    with open(os.path.join(path, "cgroup.procs"), "w") as handle:
        handle.write("0")


def cgroup_pids(path: str) -> list:
    """The PIDs in the cgroup (the caller's PID namespace view; [] when it is gone)."""
    try:
        with open(os.path.join(path, "cgroup.procs")) as handle:
            return [int(word) for word in handle.read().split()]
    except (OSError, ValueError):
        return []


def kill_cgroup(path: str) -> bool:
    """SIGKILL every process in the cgroup (``cgroup.kill``; one by one on kernels before 5.14). True if it was used."""
    if not path:
        return False
    try:
        with open(os.path.join(path, "cgroup.kill"), "w") as handle:
            handle.write("1")
        return True
    except FileNotFoundError:
        if not os.path.isdir(path):
            return False
    except OSError:
        return False
    for pid in cgroup_pids(path):
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    return True


def remove_cgroup(path: str) -> bool:
    """Remove an empty cgroup directory; False while processes are still in it (or it is gone)."""
    try:
        os.rmdir(path)
        return True
    except OSError:
        return False
