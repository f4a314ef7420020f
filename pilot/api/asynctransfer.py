"""Asynchronous transfers: ``client.transfer_async(files, ...)`` returns a :class:`TransferHandle` at once.

The handle runs the ordinary ``client.transfer`` as a background activity of :mod:`pilot.util.runner`
(the files of one request still move concurrently through the client's bounded pool) and offers ``status``, ``done()``,
``progress()``, ``cancel()``, ``wait(timeout)`` and ``result(timeout)``. Cancelling stops new files and
new attempts from starting and kills the process tree of every tool command still running (xrdcp,
gfal-copy, lsm-get/put: see :func:`pilot.copytool.common.run_tool`); the in-process ``mv``, ``s3`` and
``objectstore`` tools look at the stop event while they copy (every 64 MB, every boto3 chunk) and
stop the file they are moving too; only ``rucio`` (rucio-clients' own download threads) finishes its
current file. Files left untransferred are marked failed with the transfer's failure code
(1099 / 1137) and a ``transfer_error`` that says ``cancelled``.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from typing import Any, Optional

from pilot.util.runner import start as start_activity

logger = logging.getLogger(__name__)

PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"


class TransferHandle:
    """A transfer request running in the background."""

    def __init__(self, client: Any, files: list, activity: Any, kwargs: dict) -> None:
        self.client = client
        self.files = list(files)
        self.activity = activity
        self.kwargs = dict(kwargs)
        self.stop_event = threading.Event()
        self._future: Future = Future()
        self._state = PENDING
        self._lock = threading.Lock()
        self._activity = start_activity(f"transfer-{client.mode}", self._run)

    def _run(self) -> None:
        if not self._future.set_running_or_notify_cancel():
            return
        with self._lock:
            self._state = RUNNING if not self.stop_event.is_set() else CANCELLED
        try:
            result = self.client.transfer(self.files, activity=self.activity, _stop_event=self.stop_event,
                                          **self.kwargs)
        except BaseException as exc:  # handed to the waiter
            with self._lock:
                self._state = CANCELLED if self.stop_event.is_set() else FAILED
            self._future.set_exception(exc)
            return
        with self._lock:
            self._state = DONE
        self._future.set_result(result)

    # ------------------------------------------------------------------ public
    @property
    def status(self) -> str:
        """pending, running, done, failed or cancelled."""
        with self._lock:
            return self._state

    def done(self) -> bool:
        """Whether the request has finished (in any way)."""
        return self._future.done()

    def progress(self) -> tuple:
        """(files finished successfully, files in the request)."""
        return sum(1 for f in self.files if f.is_transferred), len(self.files)

    def cancel(self) -> bool:
        """Stop new transfers and kill running tool commands; True when the request had not finished yet."""
        if self.done():
            return False
        self.stop_event.set()
        with self._lock:
            if self._state == PENDING:
                self._state = CANCELLED
        return True

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until done (or ``timeout`` seconds); True when done."""
        self._activity.join(timeout)
        return self.done()

    def result(self, timeout: Optional[float] = None) -> list:
        """The files when done; re-raises the transfer's PilotException; TimeoutError if still running."""
        return self._future.result(timeout)

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        """The exception the transfer ended with, or None."""
        return self._future.exception(timeout)

    def __repr__(self) -> str:
        ok, total = self.progress()
        return f"TransferHandle({self.client.mode}, {self.status}, {ok}/{total} files)"
