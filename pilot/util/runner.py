"""The one place that starts a thread: named background activities, once or periodic, with failure accounting.

An *activity* is a function run in a daemon thread of its own name (the name is in every log line of
the thread and in the pilot's metrics):

- once (``interval=None``), optionally after ``delay`` seconds (a timer: :meth:`Activity.cancel`
  before the delay is over and it never runs);
- or every ``interval`` seconds (the first run after ``delay``, 0: at once), until its stop event is set.

Activities wait only on their stop event (``Event.wait`` with a bound), never by sleeping, so
:meth:`Runner.stop` ends every one of them at once, and :meth:`Runner.join` waits for them with a
bound. An exception is logged with the activity's name and traceback and counted per activity
label (:meth:`Runner.exception_counts`, the ``pilot_background_exceptions_total`` metric). Then:

- a *non-critical* activity carries on: a periodic one runs again at its next period, a one-shot one
  simply ends (its caller learns nothing unless it looks at :attr:`Activity.error`);
- a *critical* activity ends and calls the runner's ``on_failure(name, error, code)`` hook, where
  ``code`` is the activity's error code, :data:`CRITICAL_CODE` (1319, ``INTERNALPILOTPROBLEM``:
  "Internal pilot problem") unless given. In a pilot run the hook is
  :meth:`pilot.control.monitor.PilotMonitor.on_thread_failure`: the job fails with that code and the
  pilot stops, exactly as when one of its components dies.

The pilot's components (job retrieval, stage-in, payload, stage-out, monitors) are activities too:
:class:`pilot.control.supervisor.Supervisor` is a runner whose activities are critical by default.

Which runner an activity goes to: the workflow of a pilot run makes its runner the *current* one
(:func:`use_runner`, a :mod:`contextvars` variable, so nothing is global and runs in one process do
not mix) and every thread a runner starts inherits the context, so an activity started anywhere below
(a payload's memory monitor, an escalation timer, an asynchronous transfer) is counted in the pilot's
metrics without the runner being handed down. Outside a pilot run (the Data API used by Harvester,
a test) :func:`current_runner` gives a fresh runner that only logs and counts for itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional

from pilot.common.errorcodes import ErrorCodes

logger = logging.getLogger(__name__)

#: the code a critical activity's failure fails the job/pilot with (the code of a dead component)
CRITICAL_CODE = ErrorCodes.INTERNALPILOTPROBLEM

#: ``on_failure(name, error, code)``: a critical activity failed
FailureHook = Callable[[str, str, int], None]

_CURRENT: "contextvars.ContextVar[Optional[Runner]]" = contextvars.ContextVar("pilot_runner", default=None)


@dataclass(eq=False)
class Activity:
    """One named background activity and how it is doing."""

    name: str
    label: str  # the metrics label (the name without per-job parts)
    interval: Optional[float] = None
    delay: float = 0.0
    critical: bool = False
    code: int = CRITICAL_CODE
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: Optional[threading.Thread] = None
    runs: int = 0
    errors: int = 0
    error: Optional[str] = None  # the last exception, "Type: message"
    done: bool = False  # set before the runner signals the end (the thread is still alive then)
    result: Any = None  # what a one-shot target returned

    def stop(self) -> None:
        """Ask the activity to end (a periodic one after its current run; a pending one-shot never runs)."""
        self.stop_event.set()

    cancel = stop  # the ``threading.Timer`` name

    def is_alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait up to ``timeout`` seconds for the thread to end; True when it has."""
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)
        return not self.is_alive()


class Runner:
    """Start, count and stop the background activities of one pilot run (or of one library user)."""

    #: whether activities that ended stay in :attr:`activities` (the supervisor keeps them for inspection)
    keep_done = False
    #: the ``critical`` of :meth:`start` when not given
    critical_default = False

    def __init__(self, on_failure: Optional[FailureHook] = None) -> None:
        self.on_failure = on_failure
        self._listed: Dict[int, Activity] = {}  # id -> activity: the running ones (and ended ones with keep_done)
        self.changed = threading.Event()  # set whenever an activity ends
        self._lock = threading.Lock()
        self._exceptions: Dict[str, int] = {}
        self._stopping = False

    # ------------------------------------------------------------------ starting
    def start(self, name: str, target: Callable[..., Any], *args: Any, interval: Optional[float] = None,
              delay: float = 0.0, critical: Optional[bool] = None, code: int = CRITICAL_CODE,
              stop: Optional[threading.Event] = None, label: Optional[str] = None) -> Activity:
        """Run ``target(*args)`` in a daemon thread called ``name``; see the module doc.

        ``stop``: the activity's stop event (default: a new one); ``label``: its metrics label (default:
        ``name``; give one when the name carries a job id or a pid).
        """
        activity = Activity(name=name, label=label or name, critical=self.critical_default if critical is None
                            else critical, code=code, delay=max(0.0, float(delay or 0.0)),
                            interval=None if interval is None else max(0.0, float(interval)),
                            stop_event=stop if stop is not None else threading.Event())
        context = contextvars.copy_context()  # the thread sees the same current runner as its starter
        activity.thread = threading.Thread(target=context.run, args=(self._body, activity, target, args),
                                           name=name, daemon=True)
        with self._lock:
            if self._stopping:
                activity.stop_event.set()
            self._listed[id(activity)] = activity
            self._exceptions.setdefault(activity.label, 0)
        activity.thread.start()
        return activity

    def _body(self, activity: Activity, target: Callable[..., Any], args: tuple) -> None:
        try:
            if activity.delay and activity.stop_event.wait(activity.delay):
                return
            while True:
                activity.runs += 1
                try:
                    activity.result = target(*args)
                except BaseException as exc:  # every death is recorded, SystemExit included
                    self._failed(activity, exc)
                    if activity.critical or activity.interval is None or not isinstance(exc, Exception):
                        return
                if activity.interval is None or activity.stop_event.wait(activity.interval):
                    return
        finally:
            activity.done = True
            with self._lock:
                if not self.keep_done:
                    self._listed.pop(id(activity), None)
            self.changed.set()

    def _failed(self, activity: Activity, exc: BaseException) -> None:
        activity.errors += 1
        activity.error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._exceptions[activity.label] = self._exceptions.get(activity.label, 0) + 1
        where = traceback.format_exc()
        if not activity.critical:
            carry = "runs again in %g s" % activity.interval if activity.interval is not None else "ended"
            logger.warning("background activity %s failed (%s; %s)\n%s", activity.name, activity.error, carry, where)
            return
        logger.error("critical activity %s died: %s (code %d)\n%s", activity.name, activity.error, activity.code,
                     where)
        if self.on_failure is not None:
            try:
                self.on_failure(activity.name, activity.error, activity.code)
            except Exception:  # the hook must not hide the failure it reports
                logger.exception("the failure hook of activity %s failed", activity.name)

    # ------------------------------------------------------------------ state
    @property
    def activities(self) -> Dict[str, Activity]:
        """name -> the latest activity of that name still listed (running, or ended with ``keep_done``)."""
        with self._lock:
            return {a.name: a for a in self._listed.values()}

    def alive(self) -> List[str]:
        """Names of the activities still running."""
        with self._lock:
            return [a.name for a in self._listed.values() if not a.done]

    def failed(self) -> List[Activity]:
        """Activities (still listed) that have raised."""
        with self._lock:
            return [a for a in self._listed.values() if a.error]

    def exception_counts(self) -> Dict[str, int]:
        """Exceptions per activity label since the start (0 for every label started)."""
        with self._lock:
            return dict(self._exceptions)

    # ------------------------------------------------------------------ stopping
    def stop(self, timeout: Optional[float] = None) -> bool:
        """Set every activity's stop event (later ones start stopped); join them for ``timeout`` s when given."""
        with self._lock:
            self._stopping = True
            activities = list(self._listed.values())
        for activity in activities:
            activity.stop()
        return self.join(timeout) if timeout is not None else not self.alive()

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait for every activity to end, ``timeout`` seconds in all; True when all did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            activities = list(self._listed.values())
        for activity in activities:
            activity.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return all(a.done for a in activities)


# ---------------------------------------------------------------------------- the current runner
def current_runner() -> Runner:
    """The runner of the pilot run this code is part of; outside a run a new runner of its own."""
    runner = _CURRENT.get()
    return runner if runner is not None else Runner()


@contextlib.contextmanager
def use_runner(runner: Runner) -> Iterator[Runner]:
    """Make ``runner`` the current runner inside the block (and in every thread started from it)."""
    token = _CURRENT.set(runner)
    try:
        yield runner
    finally:
        _CURRENT.reset(token)


def start(name: str, target: Callable[..., Any], *args: Any, **options: Any) -> Activity:
    """:meth:`Runner.start` on the current runner."""
    return current_runner().start(name, target, *args, **options)


__all__ = ["Activity", "CRITICAL_CODE", "FailureHook", "Runner", "current_runner", "start", "use_runner"]
