"""Processes: run commands with a time-out, read the process table, measure and kill a process tree.

Commands run through the one command runner, :mod:`pilot.util.commandrunner` (``run_command`` and
``CommandResult`` are re-exported here).

The process table and the one process-tree killer are in :mod:`pilot.util.proctree` (importable on
its own by the payload guard) and re-exported here. The rule: only a process the pilot started, or
a descendant of one, is ever signalled; never PID 1, never the pilot itself. Linux only (``/proc``).
"""

from __future__ import annotations

import logging
import os
from typing import Optional

# the one command runner (time-out, stop event, bounded output, tree kill): re-exported for its callers
from pilot.util.commandrunner import REAP_TIMEOUT, CommandResult, run_command  # noqa: F401
# /proc reading and the tree killer live in pilot.util.proctree (the payload guard imports it alone)
from pilot.util.proctree import (CLOCK_TICKS, ProcInfo, _signal_all, _targets, ancestors, children,  # noqa: F401
                                 cores_in_use, descendants, innermost_pid, is_alive, kill_process_tree, process_table,
                                 read_stat,
                                 tree_cpu_seconds, tree_table, wait_for_exit)

logger = logging.getLogger(__name__)


class TreeTracker:
    """Remember every process seen in a tree, so a member that escapes can still be found.

    Members are keyed by (pid, start time), so a recycled PID is never mistaken for a member.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.members: dict = {}

    def update(self, table: Optional[dict] = None) -> list:
        """Add the current descendants; return the live member PIDs."""
        table = table if table is not None else process_table()
        for pid in [self.root] + descendants(self.root, table):
            if pid in table:
                self.members[pid] = table[pid].starttime
        return self.live(table)

    def live(self, table: Optional[dict] = None) -> list:
        """Tracked members that still exist as the same process."""
        table = table if table is not None else process_table()
        return [pid for pid, start in self.members.items()
                if pid in table and table[pid].starttime == start and table[pid].state not in ("Z", "X")]


def processes_with_environ(entry: str, table: Optional[dict] = None) -> list:
    """PIDs of the live processes whose environment holds ``entry`` (``NAME=value``), the caller excluded.

    Only processes whose ``/proc/<pid>/environ`` the caller may read count (its own uid, or all as
    root). A process can change its environment, so this finds what an escaped payload left only as
    long as it did not try to hide: the last resort after a killed guard, where neither a PID
    namespace nor a cgroup holds the payload.
    """
    table = table if table is not None else process_table()
    needle = entry.encode()
    found = []
    for pid, info in table.items():
        if pid in (0, 1, os.getpid()) or info.state in ("Z", "X"):
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                data = handle.read(1 << 20)
        except OSError:
            continue
        if needle in data.split(b"\0"):
            found.append(pid)
    return found
