"""The Services API: things that run beside a payload and produce results for the pilot or Harvester.

``Services`` is the common base of :class:`pilot.api.memorymonitor.MemoryMonitoring` (memory of a
process tree, prmon formats) and :class:`pilot.api.benchmark.Benchmark` (the pilot's own CPU
benchmark); :class:`pilot.api.analytics.Analytics` is the third service of the same family. They
are usable from plain Python (an HPC rank 0, Harvester, a site script) without a running pilot::

    from pilot.api.memorymonitor import MemoryMonitoring
    from pilot.api.benchmark import Benchmark

    with MemoryMonitoring(pid=payload.pid, workdir="/tmp/job", interval=5) as monitor:
        ...                              # the payload runs
        monitor.current()                # the latest sample (kB, bytes, s)
    monitor.summary()                    # {"Max": {...}, "Avg": {...}} as prmon writes it

    results = Benchmark(cores=8).run()   # {"score": ..., "ncores": 8, ...}

Every service has ``start()``/``stop()`` (run in the background), ``get_results()`` (its result as
a dictionary) and works as a context manager.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    """``from pilot.api.services import Benchmark, MemoryMonitoring`` (Pilot 2's import path); loaded on use
    because both modules import this one."""
    if name == "Benchmark":
        from pilot.api.benchmark import Benchmark

        return Benchmark
    if name == "MemoryMonitoring":
        from pilot.api.memorymonitor import MemoryMonitoring

        return MemoryMonitoring
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Services:
    """Base class of the services: start, stop, results; a context manager that starts and stops."""

    def start(self) -> "Services":
        """Start the service in the background (the base class has nothing to run)."""
        return self

    def stop(self) -> None:
        """Stop the service and keep its final results."""

    def get_results(self) -> Any:
        """The service's results (None before there are any)."""
        return None

    def __enter__(self) -> "Services":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
