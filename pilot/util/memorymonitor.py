"""The pilot's own memory monitor: samples a payload's process tree and writes prmon's two files.

Each :meth:`MemoryMonitor.sample` reads, for every process of the tree only,
``/proc/<pid>/smaps_rollup`` (PSS, RSS, swap), ``/proc/<pid>/status`` (virtual size, threads),
``/proc/<pid>/io`` (I/O counters) and ``/proc/<pid>/stat`` (CPU), plus ``/proc/<root>/net/dev``
once, and then

- appends one line to ``memory_monitor_output.txt`` in prmon's column layout (tab separated,
  memory in kB, I/O in bytes, times in seconds)::

      Time nprocs nthreads wtime stime utime pss rss swap vmem rchar read_bytes wchar write_bytes
      rx_bytes rx_packets tx_bytes tx_packets

- rewrites ``memory_monitor_summary.json`` as ``{"Max": {...}, "Avg": {...}}`` (maxima; time
  averages of the memory columns and average rates of the counters), the shape prmon writes and
  the experiment plug-ins read (``utilities.get_memory_monitor_info``).

No thread: the job monitor calls ``sample()`` at its period. Counters never go backwards: the
last values of a process that has exited are kept, and the CPU time of exited processes is
taken from their parents' ``cutime``/``cstime`` (including the guard at the root of the tree).
:class:`Prmon` runs the real prmon instead when it is installed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional

from pilot.util.filehandling import write_json_atomic
from pilot.util.commandrunner import start_process, stop_process
from pilot.util.processes import CLOCK_TICKS, ProcInfo, tree_table

logger = logging.getLogger(__name__)

OUTPUT_FILE = "memory_monitor_output.txt"
SUMMARY_FILE = "memory_monitor_summary.json"
PRMON_LOG = "memory_monitor.log"
COLUMNS = ("Time", "nprocs", "nthreads", "wtime", "stime", "utime", "pss", "rss", "swap", "vmem", "rchar",
           "read_bytes", "wchar", "write_bytes", "rx_bytes", "rx_packets", "tx_bytes", "tx_packets")
#: columns that are averaged over time in the summary
GAUGES = ("nprocs", "nthreads", "pss", "rss", "swap", "vmem")
#: columns that only grow; the summary gives their average rate per second
COUNTERS = ("rchar", "read_bytes", "wchar", "write_bytes", "rx_bytes", "rx_packets", "tx_bytes", "tx_packets")
IO_KEYS = ("rchar", "read_bytes", "wchar", "write_bytes")
NET_KEYS = ("rx_bytes", "rx_packets", "tx_bytes", "tx_packets")


# ---------------------------------------------------------------------------- /proc readers
def _read(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return None


def _kb_fields(text: Optional[str], wanted: tuple) -> Dict[str, int]:
    """``Name:   123 kB`` lines of a /proc file -> {name: 123} for the wanted names."""
    out: Dict[str, int] = {}
    for line in (text or "").splitlines():
        name, _, rest = line.partition(":")
        if name in wanted:
            try:
                out[name] = int(rest.split()[0])
            except (IndexError, ValueError):
                pass
    return out


def read_memory(pid: int) -> Dict[str, int]:
    """pss, rss, swap, vmem (kB) and threads of one process ({} when it is gone)."""
    status = _kb_fields(_read(f"/proc/{pid}/status"), ("VmSize", "VmRSS", "VmSwap", "Threads"))
    if not status:
        return {}
    rollup = _kb_fields(_read(f"/proc/{pid}/smaps_rollup"), ("Rss", "Pss", "Swap", "SwapPss"))
    rss = rollup.get("Rss", status.get("VmRSS", 0))
    return {"pss": rollup.get("Pss", rss), "rss": rss, "swap": rollup.get("SwapPss", rollup.get("Swap", status.get(
        "VmSwap", 0))), "vmem": status.get("VmSize", 0), "threads": status.get("Threads", 1)}


def read_io(pid: int) -> Dict[str, int]:
    """rchar, wchar, read_bytes, write_bytes of one process ({} when unreadable)."""
    out: Dict[str, int] = {}
    for line in (_read(f"/proc/{pid}/io") or "").splitlines():
        name, _, value = line.partition(":")
        if name in IO_KEYS:
            try:
                out[name] = int(value)
            except ValueError:
                pass
    return out


def read_net(pid: int) -> Dict[str, int]:
    """Bytes and packets received and sent on the non-loopback interfaces of ``pid``'s namespace."""
    totals = dict.fromkeys(NET_KEYS, 0)
    for line in (_read(f"/proc/{pid}/net/dev") or "").splitlines()[2:]:
        name, _, data = line.partition(":")
        fields = data.split()
        if name.strip() == "lo" or len(fields) < 10:
            continue
        try:
            totals["rx_bytes"] += int(fields[0])
            totals["rx_packets"] += int(fields[1])
            totals["tx_bytes"] += int(fields[8])
            totals["tx_packets"] += int(fields[9])
        except ValueError:
            continue
    return totals


# ---------------------------------------------------------------------------- the monitor
@dataclass
class _Totals:
    """Running sums and maxima for the summary."""

    samples: int = 0
    sums: Optional[dict] = None
    maxima: Optional[dict] = None

    def add(self, row: dict) -> None:
        self.samples += 1
        if self.sums is None or self.maxima is None:
            self.sums = dict.fromkeys(GAUGES, 0)
            self.maxima = {k: 0 for k in COLUMNS if k != "Time"}
        for key in GAUGES:
            self.sums[key] += row[key]
        for key in self.maxima:
            self.maxima[key] = max(self.maxima[key], row[key])


class MemoryMonitor:
    """Samples the tree below ``root`` (the payload guard) and writes prmon's files into ``workdir``.

    ``include_root`` counts the root process itself (its children's CPU is always counted).
    """

    def __init__(self, root: int, workdir: str, include_root: bool = False, output: str = OUTPUT_FILE,
                 summary: str = SUMMARY_FILE, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self.include_root = include_root
        self.output_path = os.path.join(workdir, output)
        self.summary_path = os.path.join(workdir, summary)
        self.clock = clock
        self.monotonic = monotonic
        self.started = monotonic()
        self.net_start = read_net(root)
        self.io_seen: Dict[tuple, Dict[str, int]] = {}  # (pid, start time) -> last I/O counters
        self.cpu = {"utime": 0.0, "stime": 0.0}
        self.totals = _Totals()
        self.last_row: Optional[dict] = None

    def sample(self) -> Optional[dict]:
        """Take one sample, append it to the time series and rewrite the summary; None if the tree is gone."""
        table = tree_table(self.root)
        if self.root not in table:
            return None
        members = [info for pid, info in table.items() if self.include_root or pid != self.root]
        row = dict.fromkeys(COLUMNS, 0)
        row["Time"] = int(self.clock())
        row["wtime"] = int(round(self.monotonic() - self.started))
        for info in members:
            mem = read_memory(info.pid)
            if not mem:
                continue
            row["nprocs"] += 1
            row["nthreads"] += mem["threads"]
            for key in ("pss", "rss", "swap", "vmem"):
                row[key] += mem[key]
            io = read_io(info.pid)
            if io:
                self.io_seen[(info.pid, info.starttime)] = io
        self._add_cpu(row, table, members)
        for key in IO_KEYS:
            row[key] = sum(io.get(key, 0) for io in self.io_seen.values())
        net = read_net(self.root)
        for key in NET_KEYS:
            row[key] = max(0, net.get(key, 0) - self.net_start.get(key, 0))
        self.totals.add(row)
        self.last_row = row
        self._write(row)
        return row

    def _add_cpu(self, row: dict, table: Dict[int, ProcInfo], members: list) -> None:
        """User and system CPU seconds of the tree so far, exited processes included (never decreasing)."""
        utime = sum(p.utime + p.cutime for p in members)
        stime = sum(p.stime + p.cstime for p in members)
        root = table.get(self.root)
        if root is not None and not self.include_root:
            utime += root.cutime
            stime += root.cstime
        self.cpu["utime"] = max(self.cpu["utime"], utime / CLOCK_TICKS)
        self.cpu["stime"] = max(self.cpu["stime"], stime / CLOCK_TICKS)
        row["utime"] = int(self.cpu["utime"])
        row["stime"] = int(self.cpu["stime"])

    def _write(self, row: dict) -> None:
        try:
            new = not os.path.exists(self.output_path)
            with open(self.output_path, "a") as handle:
                if new:
                    handle.write("\t".join(COLUMNS) + "\n")
                handle.write("\t".join(str(row[c]) for c in COLUMNS) + "\n")
            write_json_atomic(self.summary_path, self.summary())
        except OSError as exc:
            logger.warning("cannot write the memory monitor files in %s: %s", os.path.dirname(self.output_path), exc)

    def summary(self) -> dict:
        """``{"Max": {...}, "Avg": {...}}`` over the samples so far ({} before the first one)."""
        totals = self.totals
        if not totals.samples or totals.maxima is None or totals.sums is None:
            return {}
        last = self.last_row or {}
        maxima = dict(totals.maxima)
        wtime = max(1, int(last.get("wtime", 0)))
        averages = {key: int(round(totals.sums[key] / totals.samples)) for key in GAUGES}
        averages.update({key: int(round(last.get(key, 0) / wtime)) for key in COUNTERS})
        return {"Max": maxima, "Avg": averages}


def read_summary(path: str) -> dict:
    """A prmon-style summary file ({} when missing or unreadable)."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------------------- prmon
class Prmon:
    """The real prmon, watching the payload guard and writing the same two files."""

    def __init__(self, pid: int, workdir: str, interval: float, executable: Optional[str] = None) -> None:
        self.pid = pid
        self.workdir = workdir
        self.interval = max(1, int(interval))
        self.executable = executable or shutil.which("prmon") or "prmon"
        self.proc: Optional[subprocess.Popen] = None
        self.summary_path = os.path.join(workdir, SUMMARY_FILE)
        self.output_path = os.path.join(workdir, OUTPUT_FILE)

    @staticmethod
    def available() -> bool:
        return shutil.which("prmon") is not None

    def command(self) -> list:
        return [self.executable, "--pid", str(self.pid), "--filename", OUTPUT_FILE, "--json-summary", SUMMARY_FILE,
                "--interval", str(self.interval)]

    def start(self) -> None:
        """Start prmon in the job's work dir (its own session, so it can be stopped as a tree)."""
        with open(os.path.join(self.workdir, PRMON_LOG), "ab") as log:
            self.proc = start_process(self.command(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        logger.info("started prmon (pid %d) for process %d", self.proc.pid, self.pid)

    def sample(self) -> Optional[dict]:
        """prmon samples on its own; this only reports whether it is still running."""
        return {} if self.proc is not None and self.proc.poll() is None else None

    def summary(self) -> dict:
        return read_summary(self.summary_path)

    def stop(self, grace: float = 5.0) -> None:
        """Stop prmon if it is still running (it ends by itself once the payload is gone)."""
        proc = self.proc
        if proc is None:
            return
        stop_process(proc, grace=grace)
