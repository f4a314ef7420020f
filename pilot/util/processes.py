"""Processes: run commands with a time-out, read the process table, measure and kill a process tree.

The process table and the one process-tree killer are in :mod:`pilot.util.proctree` (importable on
its own by the payload guard) and re-exported here. The rule: only a process the pilot started, or
a descendant of one, is ever signalled; never PID 1, never the pilot itself. Linux only (``/proc``).
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence, Union

# /proc reading and the tree killer live in pilot.util.proctree (the payload guard imports it alone)
from pilot.util.proctree import (CLOCK_TICKS, ProcInfo, _signal_all, _targets, ancestors, children,  # noqa: F401
                                 cores_in_use, descendants, innermost_pid, is_alive, kill_process_tree, process_table,
                                 read_stat,
                                 tree_cpu_seconds, tree_table, wait_for_exit)

logger = logging.getLogger(__name__)

#: seconds ``run_command`` waits for a timed-out command's output and exit once its tree was killed
REAP_TIMEOUT = 10.0


@dataclass
class CommandResult:
    """What a finished command left behind."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False

    def __iter__(self) -> Iterator[Union[int, str]]:
        """Unpack as (exit_code, stdout, stderr), the Pilot 2 ``execute`` shape."""
        return iter((self.exit_code, self.stdout, self.stderr))


def run_command(cmd: Union[Sequence[str], str], timeout: Optional[float] = None, cwd: Optional[str] = None,
                env: Optional[dict] = None, shell: bool = False, input_text: Optional[str] = None) -> CommandResult:
    """Run ``cmd`` to completion and return its exit code and output.

    Without ``shell=True`` a string is split on white space only (no shell parsing): callers that
    need quoting pass a list. The command gets its own session, so a time-out kills its whole tree.
    """
    if isinstance(cmd, str) and not shell:
        cmd = cmd.split()
    try:
        proc = subprocess.Popen(cmd, shell=shell, cwd=cwd, env=env, stdin=subprocess.PIPE if input_text else
                                subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, text=True, errors="replace")
    except OSError as exc:
        return CommandResult(127, "", f"cannot execute {cmd!r}: {exc}")
    try:
        out, err = proc.communicate(input=input_text, timeout=timeout)
        return CommandResult(proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        kill_process_tree(proc.pid, grace=2.0)
        try:  # bounded: a process that escaped the tree may still hold the pipes open
            out, err = proc.communicate(timeout=REAP_TIMEOUT)
        except subprocess.TimeoutExpired:
            for stream in (proc.stdout, proc.stderr, proc.stdin):
                if stream is not None:
                    stream.close()
            out, err = "", f"\nits output was still held open {REAP_TIMEOUT} s after the kill"
            try:
                proc.wait(REAP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.warning("command %r did not end after SIGKILL", cmd)
        return CommandResult(-1, out or "", (err or "") + f"\ncommand timed out after {timeout} s", timed_out=True)


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
