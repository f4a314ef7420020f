"""Memory monitoring as a service: watch any process tree from plain Python, in prmon's formats.

The sampling itself is :class:`pilot.util.memorymonitor.MemoryMonitor` (the pilot's own prmon-format
monitor, which only *reads* /proc: it never signals the watched processes); this class runs it in
the background and hands out its values::

    monitor = MemoryMonitoring(pid=1234, workdir="/scratch/job", interval=10)
    monitor.start()
    ...
    monitor.current()   # latest sample: {"Time", "nprocs", "pss", "rss", "swap", "vmem", ...}
    monitor.stop()      # one last sample, files complete
    monitor.summary()   # {"Max": {...}, "Avg": {...}} (memory_monitor_summary.json)
    monitor.fields()    # updateJob memory fields: maxRSS, maxPSS, avgRSS, totRCHAR, rateRCHAR, ...

Files (in ``workdir``): ``memory_monitor_output.txt`` (one tab-separated line per sample, prmon's
columns) and ``memory_monitor_summary.json`` (prmon's summary). ``prmon=True`` runs the real prmon
instead when it is installed (then :meth:`current` reads its last line).

Pilot 3 call shape: ``MemoryMonitoring(user="atlas", pid=..., workdir=...)``, ``get_command()``,
``execute()``, ``get_filename()``, ``get_results()``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Dict, Optional

from pilot.util.memorymonitor import OUTPUT_FILE, SUMMARY_FILE, MemoryMonitor, Prmon, read_summary
from pilot.util.runner import Activity
from pilot.util.runner import start as start_activity

from .services import Services

logger = logging.getLogger(__name__)

#: updateJob field -> (summary part, prmon column)
UPDATE_FIELDS = {
    "maxRSS": ("Max", "rss"), "maxVMEM": ("Max", "vmem"), "maxSWAP": ("Max", "swap"), "maxPSS": ("Max", "pss"),
    "avgRSS": ("Avg", "rss"), "avgVMEM": ("Avg", "vmem"), "avgSWAP": ("Avg", "swap"), "avgPSS": ("Avg", "pss"),
    "totRCHAR": ("Max", "rchar"), "totWCHAR": ("Max", "wchar"), "totRBYTES": ("Max", "read_bytes"),
    "totWBYTES": ("Max", "write_bytes"), "rateRCHAR": ("Avg", "rchar"), "rateWCHAR": ("Avg", "wchar"),
    "rateRBYTES": ("Avg", "read_bytes"), "rateWBYTES": ("Avg", "write_bytes"),
}


def update_fields(summary: dict) -> Dict[str, int]:
    """The updateJob memory fields (compat 4.4) of a prmon-style summary."""
    out: Dict[str, int] = {}
    for target, (part, column) in UPDATE_FIELDS.items():
        value = (summary.get(part) or {}).get(column) if isinstance(summary, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[target] = int(value)
    return out


def last_sample(path: str) -> dict:
    """The last line of a prmon time series as {column: number} ({} when there is none)."""
    try:
        with open(path, errors="replace") as handle:
            lines = [line.rstrip("\n") for line in handle if line.strip()]
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    names, values = lines[0].split(), lines[-1].split()
    if len(names) != len(values):
        return {}
    try:
        return {n: int(float(v)) for n, v in zip(names, values)}
    except ValueError:
        return {}


class MemoryMonitoring(Services):
    """Sample the memory, CPU and I/O of the process tree below ``pid`` every ``interval`` seconds."""

    def __init__(self, **kwargs: Any) -> None:
        self.user: str = str(kwargs.pop("user", "") or "")
        self.pid: int = int(kwargs.pop("pid", 0) or 0)
        self.workdir: str = str(kwargs.pop("workdir", "") or os.getcwd())
        self.interval: float = max(0.1, float(kwargs.pop("interval", 60) or 60))
        #: count the watched process itself (False when ``pid`` is a wrapper such as the payload guard)
        self.include_root: bool = bool(kwargs.pop("include_root", True))
        self.use_prmon: bool = bool(kwargs.pop("prmon", False)) and Prmon.available()
        for key, value in kwargs.items():  # Pilot 3 sets unknown keywords as attributes
            setattr(self, key, value)
        self._monitor: Any = None
        self._stop = threading.Event()
        self._thread: Optional[Activity] = None  # the sampler (a pilot.util.runner activity)
        self._lock = threading.Lock()
        self._current: dict = {}

    # ------------------------------------------------------------------ Pilot 3 names
    def get_command(self) -> str:
        """The prmon command line when prmon is used, else '' (the pilot's own monitor is in-process)."""
        if not self.use_prmon or not self.pid:
            return ""
        return " ".join(Prmon(self.pid, self.workdir, self.interval).command())

    def execute(self) -> "MemoryMonitoring":
        """Pilot 3 name of :meth:`start`."""
        return self.start()

    def get_filename(self) -> str:
        """The time-series file (``memory_monitor_output.txt`` in the work dir)."""
        return os.path.join(self.workdir, OUTPUT_FILE)

    def get_results(self) -> dict:
        """The summary ({"Max": ..., "Avg": ...})."""
        return self.summary()

    # ------------------------------------------------------------------ service
    def start(self) -> "MemoryMonitoring":
        """Start sampling in the background (the first sample at once)."""
        if self._thread is not None:
            return self
        if self.pid <= 0:
            raise ValueError("MemoryMonitoring needs the pid of the process tree to watch")
        os.makedirs(self.workdir, exist_ok=True)
        if self.use_prmon:
            self._monitor = Prmon(self.pid, self.workdir, self.interval)
            self._monitor.start()
        else:
            self._monitor = MemoryMonitor(self.pid, self.workdir, include_root=self.include_root)
        self._stop = threading.Event()
        # a failed sample is logged and counted; the next one is taken at the next period
        self._thread = start_activity(f"memory-monitor-{self.pid}", self.sample, interval=self.interval,
                                      stop=self._stop, label="memory-monitor")
        logger.info("memory monitor started for process tree %d (every %g s, files in %s)", self.pid,
                    self.interval, self.workdir)
        return self

    def sample(self) -> dict:
        """Take one sample now; returns it ({} when the tree is gone)."""
        monitor = self._monitor
        if monitor is None:
            return {}
        row = monitor.sample()
        if self.use_prmon:
            row = last_sample(self.get_filename()) if row is not None else None
        if row:
            with self._lock:
                self._current = dict(row)
        return dict(row or {})

    def stop(self) -> None:
        """Stop sampling (after one last sample of a tree that still runs)."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout=max(5.0, self.interval))
        if self._monitor is not None:
            if not self.use_prmon:
                self.sample()
            else:
                self._monitor.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ values
    def current(self) -> dict:
        """The latest sample: prmon's columns (memory in kB, I/O in bytes, times in s)."""
        with self._lock:
            return dict(self._current)

    def summary(self) -> dict:
        """prmon's summary {"Max": {...}, "Avg": {...}} over the samples so far ({} before the first)."""
        if self._monitor is not None and not self.use_prmon:
            return self._monitor.summary()
        return read_summary(os.path.join(self.workdir, SUMMARY_FILE))

    def fields(self) -> Dict[str, int]:
        """The updateJob memory fields; the experiment plug-in's reading when ``user`` is set."""
        if self.user:
            from pilot.common.pluginfactory import load_user_module

            try:
                getter = getattr(load_user_module(self.user, "utilities"), "get_memory_monitor_info", None)
                if getter is not None:
                    found = getter(self.workdir, SUMMARY_FILE)
                    if found:
                        return dict(found)
            except Exception as exc:  # fall back to the pilot's own reading
                logger.warning("%s utilities.get_memory_monitor_info failed: %s", self.user, exc)
        return update_fields(self.summary())


__all__ = ["MemoryMonitoring", "update_fields", "last_sample"]
