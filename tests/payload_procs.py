"""Find a payload's processes from the host, whatever PID namespace the payload guard gave them.

A payload in its own PID namespace sees (and writes into a pid file) its namespace PID, not the
host's. ``/proc/<pid>/status`` lists every PID of a process (``NSpid``), the namespace's last.
"""

from __future__ import annotations

import os
import time
from typing import List


def _status(pid: str) -> dict:
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
    except OSError:
        return {}
    return fields


def host_pids(ns_pid: int, marker: str = "", cwd: str = "", environ: str = "") -> List[int]:
    """Host PIDs of live processes whose innermost PID is ``ns_pid`` and whose command line holds ``marker``.

    ``cwd``: only processes working in that directory; ``environ``: only processes with that
    ``NAME=value`` in their environment (other tests may run the same payload at the same PID).
    """
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _status(name)
        if not fields or fields.get("State", "")[:1] in ("Z", "X"):
            continue
        if fields.get("NSpid", "").split()[-1:] != [str(ns_pid)]:
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                if marker.encode() not in handle.read().replace(b"\0", b" "):
                    continue
        except OSError:
            continue
        if environ and not _has_environ(name, environ):
            continue
        if cwd:
            try:
                if os.path.realpath(os.readlink(f"/proc/{name}/cwd")) != os.path.realpath(cwd):
                    continue
            except OSError:
                continue
        found.append(int(name))
    return found


def _has_environ(pid: str, entry: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return entry.encode() in handle.read().split(b"\0")
    except OSError:
        return False


def wait_gone(ns_pid: int, marker: str = "", cwd: str = "", timeout: float = 10, environ: str = "") -> bool:
    """Wait (bounded) until no process matches :func:`host_pids`; True when none is left."""
    deadline = time.monotonic() + timeout
    while host_pids(ns_pid, marker, cwd, environ) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not host_pids(ns_pid, marker, cwd, environ)
