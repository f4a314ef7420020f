"""What the components of one pilot run share: options, stop events, job queues and services.

The parsed options (``args``) stay read-only; run-time state lives here instead.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Iterable, Optional, Protocol

from pilot.util.runner import Runner, current_runner

if TYPE_CHECKING:
    from pilot.control.supervisor import Supervisor
    from pilot.info.jobdata import JobData
    from pilot.info.queuedata import QueueData
    from pilot.util.workernode import WorkerNode

logger = logging.getLogger(__name__)

#: the queue names of Pilot 2 (plug-ins and tests may inspect them)
QUEUE_NAMES = (
    "jobs", "payloads", "data_in", "data_out", "current_data_in", "validated_jobs", "validated_payloads",
    "monitored_payloads", "finished_jobs", "finished_payloads", "finished_data_in", "finished_data_out",
    "failed_jobs", "failed_payloads", "failed_data_in", "failed_data_out", "completed_jobs",
    "completed_jobids",
)


class _QueueView:
    """One named queue of :class:`JobQueues`, with the ``queue.Queue`` calls plug-ins use."""

    def __init__(self, owner: "JobQueues", name: str) -> None:
        self._owner = owner
        self.name = name

    def put(self, item: Any) -> None:
        self._owner.put(self.name, item)

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        got = self._owner.get((self.name,), timeout=timeout if block else 0)
        if got is None:
            import queue

            raise queue.Empty
        return got[1]

    def qsize(self) -> int:
        return self._owner.qsize(self.name)

    def empty(self) -> bool:
        return self.qsize() == 0

    @property
    def queue(self) -> list:
        """A snapshot of the items (read-only)."""
        return self._owner.snapshot(self.name)


class JobQueues:
    """The named job queues. A consumer may wait on several names at once (one condition, no polling)."""

    def __init__(self, names: Iterable[str] = QUEUE_NAMES) -> None:
        self._cond = threading.Condition()
        self._items: Dict[str, Deque[Any]] = {name: collections.deque() for name in names}
        for name in self._items:
            setattr(self, name, _QueueView(self, name))

    def put(self, name: str, item: Any) -> None:
        """Append ``item`` to queue ``name`` and wake the waiting consumers."""
        with self._cond:
            self._items[name].append(item)
            self._cond.notify_all()

    def get(self, names: Iterable[str], timeout: Optional[float] = None,
            until: Optional[Callable[[], bool]] = None) -> Optional[tuple]:
        """Take the oldest item from the first non-empty of ``names``: (name, item).

        Returns None on time-out, or as soon as ``until()`` is true when no item is waiting (the
        condition is re-checked whenever :meth:`wake_all` is called).
        """
        names = tuple(names)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                for name in names:
                    if self._items[name]:
                        return name, self._items[name].popleft()
                if until is not None and until():
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def wake_all(self) -> None:
        """Wake every waiting consumer (used when a stop event is set)."""
        with self._cond:
            self._cond.notify_all()

    def qsize(self, name: str) -> int:
        with self._cond:
            return len(self._items[name])

    def snapshot(self, name: str) -> list:
        with self._cond:
            return list(self._items[name])


@dataclass
class StopEvents:
    """The shared stop flags of Pilot 2."""

    graceful_stop: threading.Event = field(default_factory=threading.Event)
    abort_job: threading.Event = field(default_factory=threading.Event)
    job_aborted: threading.Event = field(default_factory=threading.Event)


# --- the services of the context, as the components use them (structural types: test doubles fit too)

class Communicator(Protocol):
    """The server side of this mode (PanDA server, Harvester files, aCT file): pilot.api.communicator."""

    def get_job(self, fields: dict) -> Optional[dict]: ...
    def update_job(self, fields: dict, final: bool = False) -> dict: ...
    def get_event_ranges(self, fields: dict) -> list: ...
    def update_event_ranges(self, ranges: list, version: int = 1) -> dict: ...


class JobReporter(Protocol):
    """Heartbeats and final updates through the communicator and the outbox: pilot.control.reporting.Reporter."""

    listeners: list
    last_update: dict
    unsaved: dict

    def heartbeat(self, job: JobData, state: Optional[str] = None) -> Optional[dict]: ...
    def final(self, job: JobData) -> bool: ...
    def is_stored(self, jobid: str) -> bool: ...
    def retry_unsaved(self) -> int: ...
    def flush_outbox(self) -> int: ...


class PluginLoader(Protocol):
    """The experiment plug-in modules, loaded and checked on first use: pilot.workflow.generic.UserPlugins."""

    experiment: str

    def module(self, name: str) -> Any: ...


class HttpService(Protocol):
    """The one HTTP client of the run: pilot.util.https.HttpClient."""

    def never_answered(self, *prefixes: str) -> Optional[str]: ...
    def close(self) -> None: ...


class RecoveryStore(Protocol):
    """Records of the jobs a later pilot may recover: pilot.control.recovery.RecoveryArea."""

    def path(self, jobid: str) -> str: ...
    def orphans(self) -> list: ...
    def save(self, job: JobData, attempts: Optional[int] = None) -> bool: ...
    def remove(self, jobid: str) -> None: ...


class InfoSys(Protocol):
    """The queue and storage data of the run: pilot.info.infosys (an InfoService)."""

    queuedata: Optional[QueueData]


class MetricsFile(Protocol):
    """The pilot's metrics file: pilot.util.prometheus.PilotMetricsRun."""

    def close(self) -> None: ...


@dataclass
class PilotContext:
    """Everything the components of one pilot run share."""

    args: Any
    mainworkdir: str
    infosys: Optional[InfoSys] = None
    communicator: Communicator = None  # type: ignore[assignment]  # set by build_context, before any component
    reporter: JobReporter = None  # type: ignore[assignment]  # set by build_context, before any component
    user: PluginLoader = None  # type: ignore[assignment]  # set by build_context, before any component
    events: StopEvents = field(default_factory=StopEvents)
    queues: JobQueues = field(default_factory=JobQueues)
    start_time: float = field(default_factory=time.time)
    signal_name: Optional[str] = None  # name of the signal that stopped the pilot
    pilot_error: int = 0  # pilot-level error code (exit status)
    jobs_processed: int = 0
    last_job: Optional[JobData] = None  # the last job that completed (for the exit status)
    current_jobs: dict = field(default_factory=dict)  # jobid -> JobData while in the pilot
    executors: dict = field(default_factory=dict)  # jobid -> running payload executor
    supervisor: Optional[Supervisor] = None  # the components
    runner: Runner = field(default_factory=current_runner)  # the background activities (metrics, timers, monitors)
    node: Optional[WorkerNode] = None
    http: HttpService = None  # type: ignore[assignment]  # the run's one HttpClient: set by build_context
    recovery: Optional[RecoveryStore] = None  # pilot.control.recovery.RecoveryArea
    metrics: Optional[MetricsFile] = None  # pilot.util.prometheus.PilotMetricsRun (the pilot's metrics file)
    trace_batches: dict = field(default_factory=dict)  # jobid -> TraceBatch, sent once the job's log is out
    lock: threading.RLock = field(default_factory=threading.RLock)

    def stop(self, reason: str = "") -> None:
        """Ask every component to finish (graceful stop) and wake the waiting ones."""
        if not self.events.graceful_stop.is_set():
            logger.info("graceful stop requested%s", f": {reason}" if reason else "")
        self.events.graceful_stop.set()
        self.queues.wake_all()

    def abort(self, code: int, diag: str) -> None:
        """Abort the running job(s) with ``code``: record it, kill payloads, then stop the pilot."""
        with self.lock:
            jobs = list(self.current_jobs.values())
            executors = list(self.executors.values())
        for job in jobs:
            if getattr(job.phase, "value", "") == "stageout" and not job.errors:
                # the payload succeeded: finish its stage-out (a later pilot recovers it if we are killed)
                continue
            job.fail(code, diag, priority=True)
        self.events.abort_job.set()
        for executor in executors:
            executor.kill(reason=diag)
        self.stop(diag)

    def finished(self) -> bool:
        """True once the pilot is stopping and no job is left in it."""
        return self.events.graceful_stop.is_set() and not self.current_jobs

    def take(self, names: Iterable[str]) -> Optional[tuple]:
        """Block for the next job on one of ``names``; None when the pilot is done."""
        return self.queues.get(names, until=self.finished)

    def job_done(self, jobid: str) -> None:
        """Forget a job that has completed and wake the consumers (they may be done now)."""
        with self.lock:
            self.current_jobs.pop(jobid, None)
        self.queues.wake_all()

    def job_left(self, job: JobData) -> None:
        """The job has left this pilot: count it, hand it to ``completed_jobs``, wake the consumers."""
        if not job.recovered:
            with self.lock:
                self.jobs_processed += 1
                self.last_job = job
            self.queues.put("completed_jobs", job)
        self.job_done(job.jobid)
        if self.events.abort_job.is_set():
            self.events.job_aborted.set()

    def get_queuedata(self) -> Optional[QueueData]:
        return getattr(self.infosys, "queuedata", None)
