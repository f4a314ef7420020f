"""Launch a pilot in its own PID namespace and measure it from outside.

SAFETY: the reference pilots SIGKILL every process of the same user whose parent is PID 1 when they
exit. Every pilot (ours included, so all run the same way) is therefore started only through
``launch``, which always prefixes ``unshare -p -f --mount-proc`` (a new PID namespace: the pilot is
PID 1 there and sees nothing else) and sets ``PILOT_NOKILL=1``. A pilot that overruns its time limit
is ended by SIGKILL to its namespace's init process, which takes the whole namespace with it.

Measurements: process start and exit times from the harness; total CPU of the whole process tree
from ``wait4`` (every descendant is reaped inside the tree, so its CPU adds up there); RSS, threads
and the pilot's own CPU while it runs by sampling ``/proc`` every 0.1 s (the harness polls, the pilot
does not). Payload processes (the ``bench-payload.sh`` script and its children) are kept apart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

PAYLOAD_MARK = "bench-payload.sh"
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
TICKS = os.sysconf("SC_CLK_TCK")
NAMESPACE_PREFIX = ("unshare", "-p", "-f", "--mount-proc")


@dataclass
class Sample:
    """One look at the pilot's process tree."""

    t: float
    root_rss_kb: int = 0
    root_threads: int = 0
    pilot_rss_kb: int = 0
    pilot_procs: int = 0
    pilot_cpu: float = 0.0  # seconds: live pilot processes incl. their reaped children
    payload_procs: int = 0


def _stat(pid: str) -> Optional[tuple]:
    """(ppid, utime+stime, cutime+cstime, threads, rss_kb) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode(errors="replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    return (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS, (int(fields[13]) + int(fields[14])) / TICKS,
            int(fields[17]), int(fields[21]) * PAGE_KB)


class Sampler(threading.Thread):
    """Samples the process tree below ``top`` (the unshare process, itself excluded) every ``interval``."""

    def __init__(self, top: int, interval: float = 0.1) -> None:
        super().__init__(name="sampler", daemon=True)
        self.top = top
        self.interval = interval
        self.samples: list[Sample] = []
        self._halt = threading.Event()
        self._payload_pids: dict[int, bool] = {}

    def _is_payload(self, pid: int) -> bool:
        if pid not in self._payload_pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    self._payload_pids[pid] = PAYLOAD_MARK.encode() in handle.read()
            except OSError:
                return False
        return self._payload_pids[pid]

    def sample(self) -> Sample:
        """One snapshot of the tree."""
        now = time.time()
        stats = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                info = _stat(entry)
                if info is not None:
                    stats[int(entry)] = info
        children: dict[int, list[int]] = {}
        for pid, info in stats.items():
            children.setdefault(info[0], []).append(pid)
        sample = Sample(now)
        roots = children.get(self.top, [])
        stack = [(pid, False) for pid in roots]
        while stack:
            pid, in_payload = stack.pop()
            in_payload = in_payload or self._is_payload(pid)
            _, cpu, ccpu, threads, rss = stats[pid]
            if in_payload:
                sample.payload_procs += 1
            else:
                sample.pilot_procs += 1
                sample.pilot_rss_kb += rss
                sample.pilot_cpu += cpu + ccpu
                if pid in roots:
                    sample.root_rss_kb += rss
                    sample.root_threads += threads
            stack.extend((child, in_payload) for child in children.get(pid, []))
        return sample

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.samples.append(self.sample())

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


@dataclass
class ProcessResult:
    """What the harness saw of one pilot process."""

    start: float
    end: float
    exit_status: int
    cpu_user: float
    cpu_sys: float
    timed_out: bool
    samples: list = field(default_factory=list)

    @property
    def cpu(self) -> float:
        return self.cpu_user + self.cpu_sys


def _kill_namespace(top: int) -> None:
    """SIGKILL the namespace's init (the pilot): the kernel then ends every process in the namespace."""
    try:
        with open(f"/proc/{top}/task/{top}/children") as handle:
            inits = [int(pid) for pid in handle.read().split()]
    except OSError:
        inits = []
    for pid in inits or [top]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def launch(cmd: list, cwd: Path, env: dict, log: Path, timeout: float) -> ProcessResult:
    """Run ``cmd`` in a new PID namespace with PILOT_NOKILL=1; block until it exits; measure it."""
    if os.geteuid() != 0:
        raise RuntimeError("the bench needs root: pilots run in their own PID namespace (unshare -p)")
    env = dict(env, PILOT_NOKILL="1")
    full = [*NAMESPACE_PREFIX, *map(str, cmd)]
    assert full[:4] == list(NAMESPACE_PREFIX) and env["PILOT_NOKILL"] == "1"
    with open(log, "ab") as out:
        start = time.time()
        proc = subprocess.Popen(full, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                stdin=subprocess.DEVNULL)
    sampler = Sampler(proc.pid)
    sampler.start()
    timed_out = threading.Event()

    def overrun() -> None:
        timed_out.set()
        _kill_namespace(proc.pid)

    timer = threading.Timer(timeout, overrun)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
        end = time.time()
    finally:
        timer.cancel()
        sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ProcessResult(start, end, proc.returncode, usage.ru_utime, usage.ru_stime, timed_out.is_set(),
                         sampler.samples)
