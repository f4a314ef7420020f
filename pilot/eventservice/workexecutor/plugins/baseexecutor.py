"""BaseExecutor: what every work executor shares (the payload, the job, server calls for ranges).

A work executor is a thread; a subclass implements :meth:`run`. Server calls go through a
:class:`~pilot.eventservice.communicationmanager.CommunicationManager` (given, or created on
:meth:`start` around the given ``communicator``).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Optional

from pilot.common.exception import NotImplementedFailure, SetupFailure
from pilot.eventservice.communicationmanager import CommunicationManager

if TYPE_CHECKING:
    from pilot.control.context import Communicator

logger = logging.getLogger(__name__)


class BaseExecutor(threading.Thread):
    """Holds the payload and the job; fetches ranges ahead and reports their states."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(name="BaseExecutor", daemon=True)
        self.args: Any = None
        self.queue: str = ""
        self.payload: Optional[dict] = None
        self.communicator: Optional[Communicator] = None
        self.communication_manager: Optional[CommunicationManager] = None
        for key, value in kwargs.items():
            setattr(self, key, value)
        self._own_manager = False
        self._stop_event = threading.Event()
        self._event_ranges: list = []
        self._ranges_lock = threading.Lock()
        self._is_set_payload = self.payload is not None
        self._is_retrieve_payload = False
        self.proc: Any = None
        self.exit_code: Optional[int] = None
        self.error: Optional[str] = None
        self.done = threading.Event()

    # ------------------------------------------------------------------ life cycle
    def get_pid(self) -> Optional[int]:
        return getattr(self.proc, "pid", None) if self.proc is not None else None

    def is_payload_started(self) -> bool:
        return False

    def wait_payload_started(self, timeout: Optional[float] = None) -> bool:
        """Block until the payload runs or the executor ended; True when it runs."""
        self.done.wait(timeout)
        return self.is_payload_started()

    def start(self) -> None:
        """Start the communication manager (unless one was given), then the executor thread."""
        if self.communication_manager is None:
            if self.communicator is None:
                raise SetupFailure("a work executor needs a communicator or a communication manager")
            self.communication_manager = CommunicationManager(communicator=self.communicator)
            self._own_manager = True
        if not self.communication_manager.is_alive():
            self.communication_manager.start()
            self._own_manager = True
        super().start()

    def stop(self) -> None:
        """Ask the executor to finish (no more ranges; the payload ends its current one)."""
        self._stop_event.set()

    def is_stop(self) -> bool:
        return self._stop_event.is_set()

    def stop_communicator(self) -> None:
        """Stop the communication manager if this executor started it."""
        manager = self.communication_manager
        if manager is not None and self._own_manager:
            manager.stop()
            manager.join(timeout=10)

    # ------------------------------------------------------------------ payload
    def set_payload(self, payload: dict) -> None:
        self.payload = payload
        self._is_set_payload = True

    def is_set_payload(self) -> bool:
        return self._is_set_payload

    def set_retrieve_payload(self) -> None:
        self._is_retrieve_payload = True

    def is_retrieve_payload(self) -> bool:
        return self._is_retrieve_payload

    def retrieve_payload(self) -> Optional[dict]:
        """Get a job through the communication manager and build its payload (experiment plug-in command)."""
        from pilot.common.pluginfactory import load_user_module
        from pilot.info.jobdata import JobData

        assert self.communication_manager is not None
        jobs = self.communication_manager.get_jobs(njobs=1, args=self.args if isinstance(self.args, dict) else None)
        if not jobs:
            return None
        job = JobData.from_definition(jobs[0])
        experiment = (self.args or {}).get("pilot_user", "generic") if isinstance(self.args, dict) else "generic"
        command = load_user_module(experiment, "common").get_payload_command(job)
        self.payload = {"executable": command, "workdir": job.workdir, "job": job}
        self._is_set_payload = True
        return self.payload

    def get_payload(self) -> Optional[dict]:
        return self.payload if self._is_set_payload else None

    def get_job(self) -> Any:
        return (self.payload or {}).get("job")

    # ------------------------------------------------------------------ server calls
    def get_event_ranges(self, num_event_ranges: int = 1, queue_factor: int = 2) -> list:
        """Up to ``num_event_ranges`` ranges; the server is asked for ``queue_factor`` times more when needed."""
        with self._ranges_lock:
            if len(self._event_ranges) < num_event_ranges and not self.is_stop():
                assert self.communication_manager is not None
                got = self.communication_manager.get_event_ranges(num_event_ranges * queue_factor, job=self.get_job())
                self._event_ranges.extend(got or [])
            taken, self._event_ranges = self._event_ranges[:num_event_ranges], self._event_ranges[num_event_ranges:]
        logger.info("handing out %d event range(s): %s", len(taken), [r.get("eventRangeID") for r in taken])
        return taken

    def update_events(self, messages: Any) -> Any:
        """Report range states (``{'version': v, 'eventRanges': ...}``)."""
        assert self.communication_manager is not None
        return self.communication_manager.update_events(messages)

    def update_jobs(self, jobs: list) -> Any:
        assert self.communication_manager is not None
        return self.communication_manager.update_jobs(jobs)

    def get_exit_code(self) -> Optional[int]:
        return self.exit_code

    def run(self) -> None:
        raise NotImplementedFailure("BaseExecutor.run: use a concrete executor (e.g. generic)")
