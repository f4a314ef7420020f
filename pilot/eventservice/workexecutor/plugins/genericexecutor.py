"""GenericExecutor: one ESProcess, its range outputs packed and staged out, range states reported.

Finished ranges wait in a queue; they are packed into a premerge tarball and uploaded at most every
``stageout_gap`` seconds (the queue's ``zip_time_gap``/``es_stageout_gap``; the first batch leaves at
once), and reported with a version-1 update once on storage. Failed and fatal ranges are reported
at once (version 0). When the payload has ended, what is left is staged out (``force``): outputs
that still cannot be uploaded are reported failed. Ranges the payload never reported are not
reported at all: the server gives them to another consumer.

Waiting is event-driven: the executor sleeps on one Event that new outputs and the end of the ES
process set, with a time-out only while a batch waits for the stage-out gap.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.eventservice.esprocess.esprocess import ESProcess
from pilot.eventservice.eventrange import failed_update, range_events, zip_update
from pilot.eventservice.stageout import pack_outputs, upload

from .baseexecutor import BaseExecutor

logger = logging.getLogger(__name__)

#: stage-out attempts of one batch before its ranges are reported failed
MAX_STAGEOUT_ATTEMPTS = 3
#: seconds after which an update that could not be sent is tried again
UPDATE_RETRY_WAIT = 5.0


class GenericExecutor(BaseExecutor):
    """The default (``--es-executor-type generic``) event-service executor."""

    def __init__(self, **kwargs: Any) -> None:
        self.infosys: Any = None
        self.stageout_gap: Optional[float] = None
        self.waiting_time: float = 30 * 60
        self.client_factory: Any = None  # callable -> a StageOutESClient (trace reports, HTTP client...)
        self.transfer_kwargs: dict = {}
        super().__init__(**kwargs)
        self.name = "GenericExecutor"
        self._queued: list = []  # finished-range messages waiting for stage-out
        self._pending_updates: list = []  # (version, ranges) that could not be sent yet
        self._out_lock = threading.Lock()
        self._wake = threading.Event()
        self._last_stageout: Optional[float] = None
        self._ranges: dict = {}  # rangeID -> range definition (handed to the payload)
        self.finished_ranges: list = []
        self.failed_ranges: list = []
        self.staged: list = []  # Uploaded records
        self.stageout_error: Optional[PilotException] = None
        self._created = threading.Event()  # set once the ES process exists (or the executor ended)
        self._kill_reason = ""

    # ------------------------------------------------------------------ hooks of the ES process
    def is_payload_started(self) -> bool:
        return bool(self.proc is not None and self.proc.is_payload_started())

    def wait_payload_started(self, timeout: Optional[float] = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        self._created.wait(timeout)
        if self.proc is None:
            return False
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return bool(self.proc.wait_payload_started(remaining))

    def get_event_ranges(self, num_event_ranges: int = 1, queue_factor: int = 2) -> list:
        ranges = super().get_event_ranges(num_event_ranges, queue_factor)
        for item in ranges:
            self._ranges[str(item.get("eventRangeID"))] = item
        return ranges

    def handle_out_message(self, message: dict) -> None:
        """Queue a finished range for stage-out; report a failed one now."""
        job = self.get_job()
        logger.info("job %s: range %s %s", getattr(job, "jobid", "?"), message.get("id"), message.get("status"))
        if message.get("status") in ("failed", "fatal"):
            self.update_failed_event_ranges([message])
            return
        with self._out_lock:
            self._queued.append(message)
        self._wake.set()

    # ------------------------------------------------------------------ updates
    def update_finished_event_ranges(self, messages: list, uploaded: Any) -> None:
        """Version-1 update of ranges whose outputs are in ``uploaded`` (a premerge tarball on storage)."""
        if not messages:
            return
        update = zip_update([m["id"] for m in messages], uploaded.lfn, uploaded.fsize, uploaded.checksum,
                            uploaded.storage_id)
        self._send_update(1, update)
        self.finished_ranges.extend(m["id"] for m in messages)
        job = self.get_job()
        if job is not None:
            job.nevents = int(getattr(job, "nevents", 0) or 0) + sum(
                range_events(self._ranges.get(str(m["id"]))) for m in messages)

    def update_failed_event_ranges(self, messages: list) -> None:
        """Version-0 update of failed or fatal ranges."""
        if not messages:
            return
        self._send_update(0, failed_update(messages))
        self.failed_ranges.extend(m["id"] for m in messages)

    def _send_update(self, version: int, ranges: list) -> bool:
        try:
            self.update_events({"version": version, "eventRanges": ranges})
            return True
        except PilotException as exc:
            logger.warning("event range update (version %d) not delivered, kept for later: %s", version, exc)
            with self._out_lock:
                self._pending_updates.append((version, ranges))
            return False

    def flush_updates(self, attempts: int = 1) -> bool:
        """Send the updates that failed before; True when none is left."""
        for attempt in range(attempts):
            with self._out_lock:
                pending, self._pending_updates = self._pending_updates, []
            for version, ranges in pending:
                self._send_update(version, ranges)
            if not self._pending_updates:
                return True
            if attempt + 1 < attempts:
                threading.Event().wait(UPDATE_RETRY_WAIT)
        return not self._pending_updates

    # ------------------------------------------------------------------ stage-out
    def _gap(self) -> float:
        if self.stageout_gap is not None:
            return float(self.stageout_gap)
        queuedata = getattr(self.infosys, "queuedata", None)
        return float(getattr(queuedata, "es_stageout_gap", 0) or 0)

    def _due_in(self) -> Optional[float]:
        """Seconds until the queued outputs may leave (0: now); None when nothing is queued."""
        with self._out_lock:
            if not self._queued:
                return None
        if self._last_stageout is None:
            return 0.0
        return max(0.0, self._last_stageout + self._gap() - time.monotonic())

    def stageout_es(self, force: bool = False) -> None:
        """Pack and upload the queued outputs (if the gap allows, or ``force``), then report them."""
        due = self._due_in()
        if due is None or (due > 0 and not force):
            return
        with self._out_lock:
            batch, self._queued = self._queued, []
        job = self.get_job()
        workdir = getattr(job, "workdir", "") or os.getcwd()
        self._last_stageout = time.monotonic()
        try:
            tarball, packed, bad = pack_outputs(batch, workdir)
        except (OSError, PilotException) as exc:
            logger.error("cannot pack range outputs: %s", exc)
            tarball, packed, bad = "", [], batch
        self.update_failed_event_ranges(bad)
        if not packed:
            return
        try:
            uploaded = upload(tarball, job, self.infosys, self.client_factory, self.transfer_kwargs)
        except PilotException as exc:
            self._stageout_failed(packed, exc, force)
            return
        self.staged.append(uploaded)
        self.update_finished_event_ranges(packed, uploaded)
        _remove([m.get("path") for m in packed] + [tarball])

    def _stageout_failed(self, packed: list, exc: PilotException, force: bool) -> None:
        self.stageout_error = exc
        retry = []
        for message in packed:
            message["attempts"] = message.get("attempts", 0) + 1
            if not force and message["attempts"] < MAX_STAGEOUT_ATTEMPTS:
                retry.append(message)
        given_up = [m for m in packed if m not in retry]
        logger.error("stage-out of %d range output(s) failed (%s); %d will be retried, %d reported failed",
                     len(packed), exc.diag, len(retry), len(given_up))
        with self._out_lock:
            self._queued = retry + self._queued
        self.update_failed_event_ranges(given_up)

    # ------------------------------------------------------------------ the thread
    def run(self) -> None:
        """Run the ES process; stage out while it runs and once more at the end."""
        try:
            payload = self.get_payload() or (self.retrieve_payload() if self.is_retrieve_payload() else None)
            if not payload:
                raise PilotException("no payload for the ES executor", code=ErrorCodes.SETUPFAILURE)
            proc = ESProcess(payload, waiting_time=self.waiting_time)
            proc.set_get_event_ranges_hook(self.get_event_ranges)
            proc.set_handle_out_message_hook(self.handle_out_message)
            proc.on_finished = self._wake.set
            with self._out_lock:
                self.proc = proc
                reason = self._kill_reason
            if reason:
                proc.kill(reason)
            self._created.set()
            proc.start()
            self._stageout_loop(proc)
            proc.join()
            self.stageout_es(force=True)
            if not self.flush_updates(attempts=3):
                logger.error("%d event range update(s) could not be delivered", len(self._pending_updates))
            self.exit_code = proc.poll()
        except PilotException as exc:
            self.error = exc.diag
            self.exit_code = -1
            logger.error("ES executor failed: %s", exc.diag)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.exit_code = -1
            logger.exception("ES executor failed")
        finally:
            self._created.set()
            self.stop_communicator()
            self.done.set()
        logger.info("ES generic executor finished (exit code %s)", self.exit_code)

    def _stageout_loop(self, proc: ESProcess) -> None:
        while not proc.finished.is_set():
            if self.is_stop() and not proc.is_no_more_events:
                proc.stop()
            due = self._due_in()
            if due == 0:
                self.stageout_es()
                self.flush_updates()
                continue
            self._wake.wait(due)
            self._wake.clear()

    def stop(self) -> None:
        """Finish gracefully: the payload gets no more ranges and ends its current one."""
        super().stop()
        self._wake.set()

    def kill(self, reason: str = "") -> None:
        """Stop the payload now; finished ranges are still staged out and reported."""
        super().stop()
        with self._out_lock:
            self._kill_reason = self._kill_reason or reason or "killed"
            proc = self.proc
        if proc is not None:
            proc.kill(reason)
        self._wake.set()

    def clean(self) -> None:
        """Stop the ES process (Pilot 2 name)."""
        if self.proc is not None:
            self.proc.stop()


def _remove(paths: list) -> None:
    for path in paths:
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass
