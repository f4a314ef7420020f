"""ESProcess: run an event-service payload and serve it event ranges over the payload channel.

The thread opens the channel (:class:`MessageThread`), starts the payload with the channel's name in
its arguments (Pilot 2's ``--preExec``) and environment, then reacts to what arrives on one queue:

* ``Ready for events`` -> one range (as a JSON list) from the ``get_event_ranges`` hook, or
  ``No more events`` once the hook has nothing left (or a stop was asked for);
* an output report or ``ERR_...`` message -> parsed and given to the ``handle_out_message`` hook;
* the payload's exit -> the remaining messages of its connections are read, then the thread ends.

The payload has ``ready_timeout`` seconds (payload key) to send its first ``Ready for events``, and
``waiting_time`` seconds to exit after ``No more events``; then it is stopped. The loop blocks on the
queue (with a time-out only for those deadlines): there is no polling.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from typing import Any, Callable, Optional

from pilot.common.exception import MessageFailure, PilotException, RunPayloadFailure, SetupFailure, UnknownException
from pilot.eventservice.channel import ENV_CHANNEL, NO_MORE_EVENTS, READY
from pilot.eventservice.eventrange import parse_out_message
from pilot.util.runner import start as start_activity

from .esmessage import Flushed, MessageThread
from .launcher import GuardedLauncher

logger = logging.getLogger(__name__)

#: seconds to wait for the payload's connections to close after its exit
DRAIN_TIME = 10.0
_PAYLOAD_EXITED = object()
_WAKE = object()


def inject_channel(executable: str, socket_name: str) -> str:
    """The payload command with the channel name added as Pilot 2 adds it.

    A command that mentions ``PILOT_EVENTRANGECHANNEL`` gets ``export PILOT_EVENTRANGECHANNEL="<name>"; ``
    in front; any other gets AthenaMP's flag: a ``--preExec`` is appended, or the flag is put into the
    existing ``--preExec`` (after ``import jobproperties as jps;`` when it has one).
    """
    flag = f'jps.AthenaMPFlags.EventRangeChannel="{socket_name}"'
    if ENV_CHANNEL in executable:
        return f'export {ENV_CHANNEL}="{socket_name}"; ' + executable
    if "--preExec" not in executable:
        return executable + f" --preExec 'from AthenaMP.AthenaMPFlags import jobproperties as jps;{flag}'"
    if "import jobproperties as jps" in executable:
        return executable.replace("import jobproperties as jps;", f"import jobproperties as jps;{flag};")
    if "--preExec " in executable:
        pre_exec = f"--preExec 'from AthenaMP.AthenaMPFlags import jobproperties as jps;{flag}' "
        return executable.replace("--preExec ", pre_exec)
    logger.warning("--preExec has an unknown format, the channel name is not added: %s", executable)
    return executable


def athenamp_unsafe(event_range: Any) -> str:
    """Why AthenaMP's ``,``/``:`` splitting would misread a range ('' when it is fine)."""
    if not isinstance(event_range, dict):
        return "not an object"
    for key, value in event_range.items():
        if isinstance(value, (dict, list)):
            return f"{key} is nested"
        if "," in str(value) or "," in str(key) or ":" in str(key):
            return f"{key} holds a ',' or ':'"
    return ""


class ESProcess(threading.Thread):
    """One event-service payload and its channel, driven by two hooks."""

    def __init__(self, payload: dict, waiting_time: float = 30 * 60) -> None:
        super().__init__(name="ESProcess", daemon=True)
        self._payload = dict(payload)
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._message_thread: Optional[MessageThread] = None
        self._launcher: Any = payload.get("launcher")
        self._waiting_time = float(waiting_time)
        #: seconds the payload has to say "Ready for events" after its start (0: no limit)
        self._ready_timeout = float(payload.get("ready_timeout") or 0)
        self._ready_deadline: Optional[float] = None
        self.ready_seen = False
        self.never_ready = False
        self.get_event_ranges_hook: Optional[Callable] = None
        self.handle_out_message_hook: Optional[Callable] = None
        self.is_no_more_events = False
        self._deadline: Optional[float] = None  # monotonic time after which the payload is stopped
        self._drain_until: Optional[float] = None
        self._payload_started = threading.Event()
        self._settled = threading.Event()  # set when the payload started or the process ended
        self._payload_exited = False
        self._flushed = False
        self._killed = ""
        self._lock = threading.Lock()
        self.finished = threading.Event()
        self.on_finished: Optional[Callable[[], None]] = None
        self.pid: Optional[int] = None
        self.status: dict = {}  # the payload guard's status record
        self._ret_code: Optional[int] = None
        self.failure: Optional[PilotException] = None
        self.range_error: Optional[PilotException] = None
        self.timed_out = False
        self.ranges_sent = 0
        self.bad_messages = 0
        self.event_ranges_cache: list = []
        job = payload.get("job")
        self.corecount = max(1, int(getattr(job, "corecount", 1) or 1)) if job is not None else 1

    # ------------------------------------------------------------------ hooks
    def set_get_event_ranges_hook(self, hook: Callable) -> None:
        self.get_event_ranges_hook = hook

    def get_get_event_ranges_hook(self) -> Optional[Callable]:
        return self.get_event_ranges_hook

    def set_handle_out_message_hook(self, hook: Callable) -> None:
        self.handle_out_message_hook = hook

    def get_handle_out_message_hook(self) -> Optional[Callable]:
        return self.handle_out_message_hook

    # ------------------------------------------------------------------ state
    def is_payload_started(self) -> bool:
        return self._payload_started.is_set()

    def wait_payload_started(self, timeout: Optional[float] = None) -> bool:
        """Block until the payload runs or the process ended; True when the payload was started."""
        self._settled.wait(timeout)
        return self.is_payload_started()

    def ready_timeout_text(self) -> str:
        return f"no 'Ready for events' within {self._ready_timeout:.0f} s"

    def is_payload_running(self) -> bool:
        return self.is_payload_started() and not self._payload_exited

    def has_running_children(self) -> bool:
        thread = self._message_thread
        return bool(thread is not None and thread.is_alive()) or self.is_payload_running()

    def poll(self) -> Optional[int]:
        """None while running; the payload's exit code (or -1 on an internal failure) afterwards."""
        return self._ret_code

    # ------------------------------------------------------------------ set-up
    def init_message_thread(self, socketname: Optional[str] = None, context: str = "local") -> None:
        """Open the payload channel and start reading it."""
        logger.info("starting the message thread")
        self._message_thread = MessageThread(self._queue, socketname, context,
                                             backend=self._payload.get("channel_backend") or None)
        self._message_thread.start()

    def init_yampl_socket(self, executable: str) -> str:
        """The payload command with the channel name injected where the payload expects it."""
        assert self._message_thread is not None
        return inject_channel(executable, self._message_thread.get_yampl_socket_name())

    def channel_environment(self) -> dict:
        """The variables that tell the payload where the channel is."""
        assert self._message_thread is not None
        return {ENV_CHANNEL: self._message_thread.get_yampl_socket_name()}

    def init_payload_process(self) -> None:
        """Start the payload (through the given launcher, else under a payload guard of its own)."""
        executable = self._payload.get("executable")
        if not executable:
            raise SetupFailure("the ES payload has no executable")
        executable = self.init_yampl_socket(executable)
        wrap = self._payload.get("wrap")
        if wrap is not None:  # a container, after the channel name is in the command (as in Pilot 2)
            assert self._message_thread is not None
            executable = wrap(executable, self._message_thread.socket_file)
        workdir = self._payload.get("workdir") or os.getcwd()
        if os.path.exists(workdir) and not os.path.isdir(workdir):
            raise SetupFailure(f"the ES work dir {workdir} is not a directory")
        if self._launcher is None:
            self._launcher = GuardedLauncher(workdir, self._payload.get("output_file"),
                                             self._payload.get("error_file"), env=self._payload.get("env"))
        with self._lock:
            if self._killed:
                raise RunPayloadFailure(f"payload not started: {self._killed}")
            self.pid = self._launcher.start(executable, self.channel_environment())
            self._payload_started.set()
            if self._ready_timeout > 0:
                self._ready_deadline = time.monotonic() + self._ready_timeout
        self._settled.set()
        start_activity("ESPayloadWait", self._wait_payload)
        logger.info("ES payload started (pid %s)", self.pid)

    def _wait_payload(self) -> None:
        try:
            self.status = dict(self._launcher.wait() or {})
        except Exception as exc:  # the exit is still announced, with what is known
            logger.exception("waiting for the ES payload failed")
            self.status = {"exit_code": -1, "error": str(exc)}
        self._queue.put(_PAYLOAD_EXITED)

    def init(self) -> None:
        """Open the channel, then start the payload."""
        workdir = self._payload.get("workdir")
        if workdir and not os.path.exists(workdir):
            os.makedirs(workdir)
        self.init_message_thread()
        self.init_payload_process()

    # ------------------------------------------------------------------ stopping
    def stop(self, delay: Optional[float] = None) -> None:
        """Hand out no more ranges; the payload gets ``delay`` (default: the waiting time) seconds to exit."""
        with self._lock:
            self._no_more_events(delay)
        self._queue.put(_WAKE)

    def _no_more_events(self, delay: Optional[float] = None) -> None:
        if not self.is_no_more_events:
            self.is_no_more_events = True
            wait = self._waiting_time if delay is None else max(0.0, float(delay))
            self._deadline = time.monotonic() + wait
            if wait:
                logger.info("no more events for the payload; it has %.0f s to exit", wait)

    def kill(self, reason: str = "") -> None:
        """Stop the payload now (its finished ranges are still handled)."""
        with self._lock:
            self._killed = self._killed or reason or "killed"
            self._no_more_events(0)
            launcher = self._launcher if self._payload_started.is_set() else None
        if launcher is not None:
            launcher.kill(reason)
        self._queue.put(_WAKE)

    def terminate(self, time_to_wait: float = 1) -> None:
        """Pilot 2 name: stop handing out ranges and stop the payload after ``time_to_wait`` seconds."""
        self.stop(delay=time_to_wait)

    def clean(self) -> None:
        """Stop whatever is left: the payload (if it still runs) and the message thread."""
        if self.is_payload_running():
            self.kill("the ES process is ending")
        thread = self._message_thread
        if thread is not None:
            thread.stop()
            thread.join(timeout=10)

    def stop_message_thread(self) -> None:
        thread = self._message_thread
        if thread is not None:
            thread.stop()
            thread.join(timeout=10)

    # ------------------------------------------------------------------ ranges and messages
    def get_event_ranges(self, num_ranges: Optional[int] = None) -> list:
        """Ranges from the hook (``corecount`` of them by default)."""
        if not self.get_event_ranges_hook:
            raise SetupFailure("get_event_ranges_hook is not set")
        try:
            return list(self.get_event_ranges_hook(num_ranges or self.corecount) or [])
        except PilotException:
            raise
        except Exception as exc:
            raise MessageFailure(f"failed to get event ranges: {exc}") from exc

    def get_event_range_to_payload(self) -> list:
        """One range for the payload (as a list), or [] when there are none left."""
        if not self.event_ranges_cache:
            self.event_ranges_cache.extend(self.get_event_ranges())
        return [self.event_ranges_cache.pop(0)] if self.event_ranges_cache else []

    def send_event_ranges_to_payload(self, event_ranges: Any, peer: Any = None) -> None:
        """Send ranges (a list or one range) or ``No more events``."""
        assert self._message_thread is not None
        if isinstance(event_ranges, str) and NO_MORE_EVENTS in event_ranges:
            with self._lock:
                self._no_more_events()
            message = NO_MORE_EVENTS
        else:
            ranges = event_ranges if isinstance(event_ranges, list) else [event_ranges]
            for item in ranges:
                why = athenamp_unsafe(item)
                if why:
                    logger.warning("event range %s may not survive AthenaMP's parser: %s",
                                   item.get("eventRangeID") if isinstance(item, dict) else item, why)
            self.ranges_sent += len(ranges)
            message = json.dumps(ranges)
        try:
            self._message_thread.send(message, peer)
        except MessageFailure as exc:
            logger.warning("could not reach the payload: %s", exc)

    def parse_out_message(self, message: str) -> dict:
        return parse_out_message(message)

    def handle_out_message(self, message: str) -> None:
        """Parse an output or error message and pass it to the hook."""
        if not self.handle_out_message_hook:
            raise SetupFailure("handle_out_message_hook is not set")
        try:
            parsed = self.parse_out_message(message)
        except PilotException as exc:
            self.bad_messages += 1
            logger.error("ignoring a message from the payload: %s", exc.diag)
            return
        self.handle_out_message_hook(parsed)

    def handle_messages(self, message: str) -> None:
        """Answer a request for ranges, or hand an output/error message on."""
        if READY in message:
            self.ready_seen = True
            self._ready_deadline = None
            ranges: list = []
            if not self.is_no_more_events and not self._payload_exited:
                try:
                    ranges = self.get_event_range_to_payload()
                except PilotException as exc:
                    self.range_error = exc
                    logger.error("no event ranges for the payload: %s", exc.diag)
            self.send_event_ranges_to_payload(ranges if ranges else NO_MORE_EVENTS, message)
        else:
            self.handle_out_message(message)

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        """Start channel and payload, serve the payload until it has exited, clean up."""
        logger.info("ES process starting")
        try:
            self.init()
            self._serve()
            self._ret_code = int(self.status.get("exit_code", -1))
        except PilotException as exc:
            self.failure = exc
            self._ret_code = -1
            logger.error("ES process failed: %s", exc.diag)
        except Exception as exc:
            self.failure = UnknownException(f"ES process failed: {exc}")
            self._ret_code = -1
            logger.exception("ES process failed")
        finally:
            self.clean()
            self.finished.set()
            self._settled.set()  # release anybody waiting for a start that will not come
            if self.on_finished is not None:
                self.on_finished()
        logger.info("ES process finished (exit code %s)", self._ret_code)

    def _timeout(self) -> Optional[float]:
        running = not self._payload_exited
        ends = [t for t in (self._deadline if running else None, self._drain_until,
                            self._ready_deadline if running else None) if t]
        return max(0.0, min(ends) - time.monotonic()) if ends else None

    def _serve(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._timeout())
            except queue.Empty:
                if self._drain_until is not None and time.monotonic() >= self._drain_until:
                    logger.warning("payload connection(s) still open %.0f s after its exit", DRAIN_TIME)
                    return
                self._deadline_passed()
                continue
            if item is _PAYLOAD_EXITED:
                self._payload_exited = True
                self._drain_until = time.monotonic() + DRAIN_TIME
                if self._message_thread is None or not self._message_thread.is_alive():
                    return
                self._message_thread.flush()
            elif isinstance(item, Flushed):
                self._flushed = self._payload_exited
            elif isinstance(item, str):
                self.handle_messages(item)
            if self._flushed and not self._open_peers():
                return

    def _open_peers(self) -> int:
        thread = self._message_thread
        return thread.open_peers if thread is not None and thread.is_alive() else 0

    def _deadline_passed(self) -> None:
        if (self._ready_deadline is not None and not self._payload_exited and not self.ready_seen
                and time.monotonic() >= self._ready_deadline):
            self._ready_deadline = None
            self.never_ready = True
            logger.error("the payload did not ask for event ranges within %.0f s: stopping it", self._ready_timeout)
            self.kill(self.ready_timeout_text())
            return
        if self._payload_exited or self._deadline is None or time.monotonic() < self._deadline:
            return
        self._deadline = None
        if not self._killed:
            self.timed_out = True
            logger.error("the payload did not exit within %.0f s after 'No more events': stopping it",
                         self._waiting_time)
            self.kill(f"no exit within {self._waiting_time:.0f} s after No more events")
