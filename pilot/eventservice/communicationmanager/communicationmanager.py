"""The communication manager: one thread that makes the event service's server calls, in order.

Clients (the ES process asking for ranges, the stage-out thread reporting them) put a
:class:`CommunicationRequest` on the manager's queue and either block until its
:class:`CommunicationResponse` arrives or pass a ``post_hook`` that receives it. The manager calls
the pilot's communicator (``get_event_ranges(fields)`` / ``update_event_ranges(ranges, version)``,
plus ``get_job`` / ``update_job``), so PanDA, the REST API and Harvester's shared files are all
reached through the same code.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from pilot.common.exception import CommunicationFailure, PilotException, SetupFailure, UnknownException

if TYPE_CHECKING:
    from pilot.control.context import Communicator

logger = logging.getLogger(__name__)

_STOP = object()


def _describe(obj: Any) -> str:
    fields = {}
    for key, value in vars(obj).items():
        if key.startswith("_") or callable(value):
            continue
        fields[key] = [str(v) for v in value] if isinstance(value, list) else (str(value) if value else value)
    return json.dumps(fields, default=str)


class CommunicationResponse:
    """The outcome of a request: ``status`` (0 = done), ``content`` and ``exception``."""

    # set from the attributes given (Pilot 2's shape: any further key becomes an attribute too)
    status: Optional[int]
    content: Any
    exception: Optional[BaseException]

    def __init__(self, attrs: Any = None) -> None:
        attrs = dict(json.loads(attrs) if isinstance(attrs, str) else (attrs or {}))
        for key in ("status", "content", "exception"):
            attrs.setdefault(key, None)
        for key, value in attrs.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return _describe(self)


class CommunicationRequest:
    """One call to be made by the manager; ``response`` is set (and waiters woken) when it is done."""

    class RequestType:
        RequestJobs = "request_jobs"
        UpdateJobs = "update_jobs"
        RequestEvents = "request_events"
        UpdateEvents = "update_events"

    _DEFAULTS: Dict[str, Dict[str, Any]] = {
        RequestType.RequestJobs: {"num_jobs": 1},
        RequestType.RequestEvents: {"num_event_ranges": 1},
        RequestType.UpdateEvents: {"update_events": None},
        RequestType.UpdateJobs: {"jobs": None},
    }

    # set from the attributes given, with the defaults above (Pilot 2's shape: any key becomes an attribute)
    request_type: str
    post_hook: Optional[Callable[[CommunicationResponse], None]]
    response: Optional[CommunicationResponse]
    num_jobs: Optional[int]
    num_event_ranges: Optional[int]
    num_ranges: Optional[int]
    update_events: Any
    jobs: Optional[list]
    jobid: Any
    jobsetid: Any
    taskid: Any

    def __init__(self, attrs: Any = None) -> None:
        attrs = dict(json.loads(attrs) if isinstance(attrs, str) else (attrs or {}))
        kind = attrs.get("request_type")
        if kind not in self._DEFAULTS:
            raise SetupFailure(f"unknown communication request type {kind!r}")
        for key, value in {**self._DEFAULTS[kind], "post_hook": None, "response": None}.items():
            attrs.setdefault(key, value)
        for key, value in attrs.items():
            setattr(self, key, value)
        self.abort = False
        self._done = threading.Event()

    def set_response(self, response: CommunicationResponse) -> None:
        """Store the response and wake whoever waits for it."""
        self.response = response
        self._done.set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the response is there; False on time-out."""
        return self._done.wait(timeout)

    def __str__(self) -> str:
        return _describe(self)


def _job_fields(job: Any) -> tuple:
    """(PandaID, jobsetID, taskID) of a JobData object or a job definition dictionary."""
    if isinstance(job, dict):
        return str(job.get("PandaID", "")), str(job.get("jobsetID", "")), str(job.get("taskID", ""))
    return str(job.jobid), str(getattr(job, "jobsetid", "")), str(getattr(job, "taskid", ""))


def normalise_update(update: Any) -> tuple:
    """(ranges list, version) from ``{'version': v, 'eventRanges': <JSON text or list>}`` or a bare list."""
    if isinstance(update, dict) and "eventRanges" in update:
        ranges = update["eventRanges"]
        if isinstance(ranges, str):
            ranges = json.loads(ranges) if ranges.strip() else []
        return list(ranges), int(update.get("version", 1))
    if isinstance(update, list):
        flat = all(isinstance(item, dict) and "eventRanges" not in item for item in update)
        return list(update), 0 if flat else 1
    raise SetupFailure(f"cannot interpret an event range update of type {type(update).__name__}")


class CommunicationManager(threading.Thread):
    """The thread that serves :class:`CommunicationRequest` objects through a communicator."""

    def __init__(self, *args: Any, communicator: Optional[Communicator] = None, **kwargs: Any) -> None:
        super().__init__(name="CommunicationManager", daemon=True)
        self.args = args[0] if args else kwargs.get("args")
        self.kwargs = kwargs
        self.communicator = communicator
        self.requests: "queue.Queue[Any]" = queue.Queue()
        self.stop_event = threading.Event()
        self.error: Optional[str] = None

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Stop serving: queued requests are answered with a CommunicationFailure."""
        if not self.stop_event.is_set():
            logger.info("stopping the communication manager")
            self.stop_event.set()
            self.requests.put(_STOP)

    def is_stop(self) -> bool:
        return self.stop_event.is_set()

    # ------------------------------------------------------------------ client calls
    def get_jobs(self, njobs: int = 1, post_hook: Optional[Callable] = None, args: Any = None) -> Any:
        """Job definitions (a list) from the communicator's getJob."""
        attrs = dict(args if isinstance(args, dict) else vars(args) if args is not None else {})
        attrs.update(request_type=CommunicationRequest.RequestType.RequestJobs, num_jobs=njobs, post_hook=post_hook)
        return self._submit(CommunicationRequest(attrs))

    def update_jobs(self, jobs: list, post_hook: Optional[Callable] = None) -> Any:
        """Send updateJob field sets; the replies, in order."""
        return self._submit(CommunicationRequest({"request_type": CommunicationRequest.RequestType.UpdateJobs,
                                                  "jobs": jobs, "post_hook": post_hook}))

    def get_event_ranges(self, num_event_ranges: int = 1, post_hook: Optional[Callable] = None,
                         job: Any = None) -> Any:
        """Up to ``num_event_ranges`` new ranges for ``job`` (a list, empty when there are none left)."""
        if not job:
            raise CommunicationFailure(f"cannot get event ranges without the job (job: {job})")
        pandaid, jobsetid, taskid = _job_fields(job)
        return self._submit(CommunicationRequest({
            "request_type": CommunicationRequest.RequestType.RequestEvents, "num_event_ranges": num_event_ranges,
            "post_hook": post_hook, "jobid": pandaid, "jobsetid": jobsetid, "taskid": taskid,
            "num_ranges": num_event_ranges}))

    def update_events(self, update_events: Any, post_hook: Optional[Callable] = None) -> Any:
        """Report range states: ``{'version': 0|1, 'eventRanges': ...}`` (or a bare list)."""
        return self._submit(CommunicationRequest({"request_type": CommunicationRequest.RequestType.UpdateEvents,
                                                  "update_events": update_events, "post_hook": post_hook}))

    def _submit(self, req: CommunicationRequest) -> Any:
        if self.is_stop():
            return None
        if not self.is_alive():
            raise CommunicationFailure("the communication manager is not running")
        self.requests.put(req)
        if req.post_hook:
            return None
        req.wait()
        response = req.response
        assert response is not None  # set_response() stores it before it wakes the waiter
        if response.exception:
            raise response.exception
        return response.content if response.status == 0 else None

    # ------------------------------------------------------------------ the thread
    def run(self) -> None:
        """Serve requests until stopped; then fail whatever is still queued."""
        logger.info("communication manager started (communicator %s)", getattr(self.communicator, "name", "?"))
        try:
            while True:
                req = self.requests.get()
                if req is _STOP:
                    break
                self._serve(req)
        except BaseException as exc:  # record a death; the waiting clients are released below
            self.error = f"{type(exc).__name__}: {exc}"
            logger.exception("the communication manager died")
        self._abort_pending()
        logger.info("communication manager stopped")

    def _abort_pending(self) -> None:
        while True:
            try:
                req = self.requests.get_nowait()
            except queue.Empty:
                return
            if req is _STOP:
                continue
            req.abort = True
            req.set_response(CommunicationResponse({
                "status": -1, "exception": CommunicationFailure("the communication manager is stopping")}))

    def _serve(self, req: CommunicationRequest) -> None:
        handlers = {
            CommunicationRequest.RequestType.RequestEvents: self._get_events,
            CommunicationRequest.RequestType.UpdateEvents: self._update_events,
            CommunicationRequest.RequestType.RequestJobs: self._get_jobs,
            CommunicationRequest.RequestType.UpdateJobs: self._update_jobs,
        }
        try:
            self._backend()  # raises when there is none
            content = handlers[req.request_type](req)
            response = CommunicationResponse({"status": 0, "content": content})
        except PilotException as exc:
            logger.warning("%s failed: %s", req.request_type, exc)
            response = CommunicationResponse({"status": -1, "exception": exc})
        except Exception as exc:  # a backend bug must reach the waiting client, not kill the thread
            logger.exception("%s failed", req.request_type)
            failure = UnknownException(f"{req.request_type}: {exc}")
            response = CommunicationResponse({"status": -1, "exception": failure})
        req.set_response(response)
        if req.post_hook:
            try:
                req.post_hook(response)
            except Exception:
                logger.exception("post hook of %s failed", req.request_type)

    def _backend(self) -> Communicator:
        if self.communicator is None:
            raise SetupFailure("the communication manager has no communicator")
        return self.communicator

    def _get_events(self, req: CommunicationRequest) -> list:
        fields = {"pandaID": req.jobid, "jobsetID": req.jobsetid, "taskID": req.taskid,
                  "nRanges": max(1, int(req.num_ranges or 1))}
        ranges = self._backend().get_event_ranges(fields) or []
        logger.info("job %s: got %d event range(s)", req.jobid, len(ranges))
        return list(ranges)

    def _update_events(self, req: CommunicationRequest) -> Any:
        ranges, version = normalise_update(req.update_events)
        logger.info("updating %d event range record(s) (version %d)", len(ranges), version)
        return self._backend().update_event_ranges(ranges, version=version)

    def _get_jobs(self, req: CommunicationRequest) -> list:
        skip = {"request_type", "num_jobs", "post_hook", "response", "abort"}
        fields = {"getProxyKey": "False"}  # as Pilot 2's event-service job request
        fields.update({k: v for k, v in vars(req).items() if k not in skip and not k.startswith("_")})
        jobs = []
        for _ in range(max(1, int(req.num_jobs or 1))):
            job = self._backend().get_job(fields)
            if not job:
                break
            jobs.append(job)
        return jobs

    def _update_jobs(self, req: CommunicationRequest) -> list:
        return [self._backend().update_job(fields, final=fields.get("state") in ("finished", "failed"))
                for fields in req.jobs or []]
