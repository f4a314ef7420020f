"""The process tree: ``/proc`` reading and the one process-tree killer (SIGTERM, grace, SIGKILL).

The rule it enforces: only a process the pilot started, or a descendant of one, is ever signalled;
never PID 1, never the calling process, never a tree that contains it. Linux only (``/proc``).

It needs nothing beyond ``os``, ``select``, ``signal`` and ``time``: the payload guard, a separate
small interpreter started for every job, imports it when it has a tree to stop, and that start-up
is part of the pilot's own cost on every slot. ``logging`` is loaded only when there is something
to kill.
:mod:`pilot.util.processes` re-exports every name for the rest of the pilot.
"""

from __future__ import annotations

import os
import select
import signal
import time
from typing import TYPE_CHECKING, Iterable, Optional

if TYPE_CHECKING:  # logging is loaded only when something is logged (the payload guard imports this module)
    import logging

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _log() -> "logging.Logger":
    import logging

    return logging.getLogger("pilot.util.processes")


class ProcInfo:
    """The fields of ``/proc/<pid>/stat`` the pilot uses (a plain record: no dataclasses import here)."""

    __slots__ = ("pid", "ppid", "pgrp", "session", "state", "utime", "stime", "cutime", "cstime", "starttime",
                 "rss_pages", "comm", "processor")

    def __init__(self, pid: int, ppid: int, pgrp: int, session: int, state: str, utime: int, stime: int,
                 cutime: int, cstime: int, starttime: int, rss_pages: int, comm: str, processor: int = -1) -> None:
        self.pid, self.ppid, self.pgrp, self.session, self.state = pid, ppid, pgrp, session, state
        self.utime, self.stime, self.cutime, self.cstime = utime, stime, cutime, cstime
        self.starttime, self.rss_pages, self.comm = starttime, rss_pages, comm
        self.processor = processor  # the CPU it last ran on (what ``ps -o psr`` shows)

    def __repr__(self) -> str:
        return f"ProcInfo(pid={self.pid}, ppid={self.ppid}, state={self.state!r}, comm={self.comm!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProcInfo) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    @property
    def cpu_seconds(self) -> float:
        """Own CPU plus that of reaped children, in seconds."""
        return (self.utime + self.stime + self.cutime + self.cstime) / CLOCK_TICKS


def read_stat(pid: int) -> Optional[ProcInfo]:
    """Parse ``/proc/<pid>/stat``; None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read().decode(errors="replace")
    except OSError:
        return None
    lpar, rpar = data.find("("), data.rfind(")")
    comm = data[lpar + 1:rpar]
    f = data[rpar + 2:].split()
    try:
        return ProcInfo(pid=pid, state=f[0], ppid=int(f[1]), pgrp=int(f[2]), session=int(f[3]),
                        utime=int(f[11]), stime=int(f[12]), cutime=int(f[13]), cstime=int(f[14]),
                        starttime=int(f[19]), rss_pages=int(f[21]), comm=comm,
                        processor=int(f[36]) if len(f) > 36 else -1)
    except (IndexError, ValueError):
        return None


def process_table() -> dict:
    """All visible processes: pid -> ProcInfo."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = read_stat(int(name))
            if info is not None:
                table[info.pid] = info
    return table


def descendants(root: int, table: Optional[dict] = None) -> list:
    """PIDs of every descendant of ``root`` (not including it), parents before children."""
    table = table if table is not None else process_table()
    children: dict = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop(0)
        if pid in found:
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def children(pid: int) -> Optional[list]:
    """Direct children of ``pid`` from ``/proc/<pid>/task/*/children`` (None when the kernel lacks it).

    Reads only the files of this one process (no scan of all of /proc). An exited process has
    no children ([]).
    """
    found: list = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                found.extend(int(x) for x in handle.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended meanwhile
            return None  # no children files on this kernel
        except (OSError, ValueError):
            continue
    return found


def tree_table(root: int) -> dict:
    """``pid -> ProcInfo`` of ``root`` and its descendants, reading only their /proc entries.

    Falls back to a full :func:`process_table` when the kernel has no ``children`` files.
    """
    table: dict = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            continue
        info = read_stat(pid)
        if info is None:
            continue
        table[pid] = info
        kids = children(pid)
        if kids is None:
            full = process_table()
            return {p: full[p] for p in [root] + descendants(root, full) if p in full}
        todo.extend(kids)
    return table


def ancestors(pid: int, table: Optional[dict] = None) -> list:
    """PIDs of the parent, grandparent, ... of ``pid`` up to PID 1."""
    table = table if table is not None else process_table()
    found = []
    current = table.get(pid)
    while current is not None and current.ppid > 0 and current.ppid not in found:
        found.append(current.ppid)
        current = table.get(current.ppid)
    return found


def tree_cpu_seconds(root: int, table: Optional[dict] = None) -> float:
    """CPU seconds of a process tree, finished children included.

    Summing own plus reaped-children time over the live members counts every second once: a dead
    child's time moved into the ``cutime`` of the live process that waited for it.
    """
    table = table if table is not None else process_table()
    pids = [root] + descendants(root, table)
    return sum(table[p].cpu_seconds for p in pids if p in table)


def innermost_pid(pid: int) -> Optional[int]:
    """The PID of ``pid`` in its own (innermost) PID namespace, from ``NSpid`` (None when unknown)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def cores_in_use(root: int, table: Optional[dict] = None) -> int:
    """How many distinct CPUs the live processes of a tree last ran on (0 when none is known).

    Pilot 2's "actual core count" sample (``ps axo pgid,psr`` of the payload's process group). The
    root alone counts only when it has no live descendant (it is the pilot's payload guard).
    """
    table = table if table is not None else process_table()
    members = [p for p in descendants(root, table) if table[p].state not in ("Z", "X")] or [root]
    return len({table[p].processor for p in members if p in table and table[p].processor >= 0})


def is_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    info = read_stat(pid)
    return info is not None and info.state not in ("Z", "X")


# ---------------------------------------------------------------------------- killing
def _targets(root: int, pgrp: Optional[int], table: dict) -> list:
    """The root, its descendants and the members of its process group; never ourselves or PID 1."""
    me = os.getpid()
    protected = {0, 1, me, os.getppid()}
    pids = [root] + descendants(root, table)
    if pgrp and pgrp not in (os.getpgrp(), 0, 1):
        pids += [p.pid for p in table.values() if p.pgrp == pgrp and p.pid not in pids]
    return [p for p in pids if p not in protected and p in table and table[p].state not in ("Z", "X")]


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_for_exit(pids: Iterable[int], timeout: float) -> list:
    """Wait until the given processes are gone or ``timeout`` passes; return those still alive.

    Uses pidfds (no polling) where the kernel offers them.
    """
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if is_alive(p)]
    fds = {}
    if hasattr(os, "pidfd_open"):
        for pid in alive:
            try:
                fds[os.pidfd_open(pid)] = pid
            except OSError:
                pass
    try:
        while alive and time.monotonic() < deadline:
            remaining = deadline - time.monotonic()
            if fds and len(fds) == len(alive):
                poller = select.poll()
                for fd in fds:
                    poller.register(fd, select.POLLIN)
                poller.poll(max(1, int(min(remaining, 1.0) * 1000)))
            else:
                time.sleep(min(0.05, max(remaining, 0)))
            alive = [p for p in alive if is_alive(p)]
            for fd, pid in list(fds.items()):
                if pid not in alive:
                    os.close(fd)
                    del fds[fd]
    finally:
        for fd in fds:
            os.close(fd)
    return alive


def kill_process_tree(root: int, pgrp: Optional[int] = None, grace: float = 10.0,
                      extra: Iterable[int] = ()) -> list:
    """Stop a process tree: SIGTERM (and SIGCONT for stopped members), a grace period, then SIGKILL.

    ``pgrp`` adds the members of that process group (processes that left the tree by
    double-forking but stayed in the group); ``extra`` adds descendants tracked earlier (they are
    signalled only while they still exist with the same start time, see :class:`TreeTracker`).
    Returns the PIDs that were signalled.
    """
    table = process_table()
    if root <= 1 or root in ancestors(os.getpid(), table):
        raise ValueError(f"refusing to kill the tree of PID {root}: it contains the pilot itself")
    pids = _targets(root, pgrp, table)
    pids += [p for p in extra if p in table and p not in pids and p not in (0, 1, os.getpid())]
    if not pids:
        return []
    _log().info("sending SIGTERM to %d process(es) of tree %d", len(pids), root)
    _signal_all(pids, signal.SIGTERM)
    _signal_all(pids, signal.SIGCONT)
    alive = wait_for_exit(pids, grace)
    # members forked during the grace period
    table = process_table()
    late = [p for p in _targets(root, pgrp, table) if p not in pids]
    survivors = alive + late
    if survivors:
        _log().warning("sending SIGKILL to %d process(es) of tree %d", len(survivors), root)
        _signal_all(survivors, signal.SIGKILL)
        wait_for_exit(survivors, 5.0)
    return pids + late
