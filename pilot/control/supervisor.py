"""A tiny supervisor for the pilot's worker threads: the only place that starts a thread.

Each worker runs a function; if it raises, the exception is recorded and ``on_failure`` is called
at once (the pilot monitor aborts the job with a coded error), so a dead component never leaves the
pilot hanging.
"""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

logger = logging.getLogger(__name__)


@dataclass
class Worker:
    """One named thread and how it ended."""

    name: str
    thread: threading.Thread
    error: Optional[str] = None
    critical: bool = True
    done: bool = False  # set before the thread signals its end (is_alive() is still true then)


@dataclass
class Supervisor:
    """Start, watch and join the named workers of a pilot run."""

    on_failure: Optional[Callable[[str, str], None]] = None
    workers: dict = field(default_factory=dict)
    changed: threading.Event = field(default_factory=threading.Event)

    def start(self, name: str, target: Callable[..., Any], *args: Any, critical: bool = True) -> Worker:
        """Run ``target(*args)`` in a daemon thread called ``name``."""
        worker = Worker(name=name, thread=threading.Thread(name=name, daemon=True), critical=critical)

        def run() -> None:
            try:
                target(*args)
            except BaseException as exc:  # record any death, including SystemExit
                worker.error = f"{type(exc).__name__}: {exc}"
                logger.error("thread %s died: %s\n%s", name, worker.error, traceback.format_exc())
                if self.on_failure is not None and critical:
                    self.on_failure(name, worker.error)
            finally:
                worker.done = True
                self.changed.set()

        worker.thread.run = run  # type: ignore[method-assign]
        self.workers[name] = worker
        worker.thread.start()
        return worker

    def alive(self) -> list:
        """Names of the workers still running."""
        return [w.name for w in self.workers.values() if not w.done]

    def failed(self) -> list:
        """Workers that died with an exception."""
        return [w for w in self.workers.values() if w.error]

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait for every worker to end; True when all did within ``timeout``."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in list(self.workers.values()):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            worker.thread.join(remaining)
        return not self.alive()
