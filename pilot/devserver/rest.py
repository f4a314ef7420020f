"""The REST API of panda-server 1.0 and later: ``/api/v1/pilot/<method>``, ``/api/v1/event/<method>`` and
``/api/v1/creds/get_proxy`` / ``get_key_pair``.

Modelled on ``pandaserver/api/v1/pilot_api.py`` and ``event_api.py``: POST bodies are JSON objects
whose members are the snake_case parameters of the server function, GET parameters come in the
query string. The server checks every parameter against its signature: an unknown one gives
``Argument error: got an unexpected keyword argument '<name>'``, a value of the wrong JSON type
``Type error: ...`` (``"7"`` where an int is expected is refused), a wrong HTTP verb
``expecting POST, received GET``. Every reply is ``{"success": bool, "message": str, "data": ...}``.

The jobs, updates and event ranges are the same as those of the legacy methods (:mod:`.panda`):
an ``update_job`` is stored under the legacy field names, so ``/admin/job/<id>`` and ``wait`` work
whichever protocol the pilot spoke; the raw request is in the ``requests`` table under the REST
method name (``acquire_jobs``, ``update_job``, ...).

Server generations: the setting ``rest_api`` (default true) switches this API off (404, like a
server older than 1.0); ``legacy_api`` false makes the legacy methods answer 403 ``method <name> is
forbidden`` (see :mod:`.panda`), like a server that dropped them. Set both with ``/admin/settings``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Optional

from . import panda
from . import protocol as proto
from .routing import Reply, Request, Route, error

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .app import App

logger = logging.getLogger(__name__)

REST_TIME = "%Y-%m-%d %H:%M:%S"
NUMBER = (int, float)
_REQUIRED = object()

#: update_job parameters: REST name -> (accepted JSON types, legacy updateJob field)
UPDATE_JOB: dict[str, tuple[Any, str]] = {
    "job_id": (int, "jobId"), "job_status": (str, "state"), "job_output_report": (str, "xml"),
    "node": (str, "node"), "cpu_consumption_time": (int, "cpuConsumptionTime"),
    "cpu_consumption_unit": (str, "cpuConsumptionUnit"), "scheduler_id": (str, "schedulerID"),
    "pilot_id": (str, "pilotID"), "site_name": (str, "siteName"), "pilot_log": (str, "pilotLog"),
    "meta_data": (str, "metaData"), "cpu_conversion_factor": (float, "cpuConversionFactor"),
    "trans_exit_code": (int, "transExitCode"), "pilot_error_code": (int, "pilotErrorCode"),
    "pilot_error_diag": (str, "pilotErrorDiag"), "exe_error_code": (int, "exeErrorCode"),
    "exe_error_diag": (str, "exeErrorDiag"), "pilot_timing": (str, "pilotTiming"),
    "start_time": (str, "startTime"), "end_time": (str, "endTime"), "n_events": (int, "nEvents"),
    "n_input_files": (int, "nInputFiles"), "batch_id": (str, "batchID"), "attempt_nr": (int, "attemptNr"),
    "job_metrics": (str, "jobMetrics"), "stdout": (str, "stdout"), "job_sub_status": (str, "jobSubStatus"),
    "core_count": (int, "coreCount"), "mean_core_count": (int, "meanCoreCount"),
    "corrupted_files": (str, "corruptedFiles"), "cpu_architecture_level": (str, "cpuArchitectureLevel"),
    "grid": (str, "grid"), "source_site": (str, "sourceSite"), "destination_site": (str, "destinationSite"),
    "timeout": (int, ""),
    **{f"{kind}_{name}": (NUMBER, f"{kind}{name.upper()}") for kind in ("max", "avg")
       for name in ("rss", "vmem", "swap", "pss")},
    **{f"{kind}_{name}": (NUMBER, f"{kind}{name.upper()}") for kind in ("tot", "rate")
       for name in ("rchar", "wchar", "rbytes", "wbytes")},
}
_UPDATE_REQUIRED = ("job_id", "job_status")

#: parameters (name -> accepted types) of the other methods; names in REQUIRED_* must be present
ACQUIRE_JOBS = {"site_name": str, "timeout": int, "memory": int, "disk_space": int, "prod_source_label": str,
                "node": str, "computing_element": str, "prod_user_id": str, "get_proxy_key": str, "task_id": int,
                "n_jobs": int, "background": bool, "resource_type": str, "harvester_id": str, "worker_id": int,
                "scheduler_id": str, "job_type": str, "via_topic": bool, "remaining_time": int}
GET_JOB_STATUS = {"job_ids": list, "timeout": int}
UPDATE_JOBS_BULK = {"job_list": list, "harvester_id": str}
UPDATE_WORKER_STATUS = {"worker_id": object, "harvester_id": object, "status": object, "timeout": object,
                        "node_id": object}
ACQUIRE_EVENT_RANGES = {"job_id": int, "jobset_id": int, "task_id": int, "n_ranges": int, "timeout": int,
                        "scattered": bool, "segment_id": int}
UPDATE_EVENT_RANGES = {"event_ranges": str, "timeout": int, "version": int}
UPDATE_SINGLE_EVENT_RANGE = {"event_range_id": str, "event_range_status": str, "core_count": int,
                             "cpu_consumption_time": NUMBER, "object_store_id": int, "timeout": int}
EVENT_RANGE_COUNT = {"job_id": int, "jobset_id": int, "task_id": int, "timeout": int}
EVENT_RANGE_STATUSES = {"job_task_ids": str}


def envelope(success: bool, message: str = "", data: Any = None) -> Reply:
    """A REST reply (always HTTP 200, as the server does)."""
    return Reply(200, {"success": success, "message": message, "data": data})


class ParameterError(ValueError):
    """A request whose parameters the server function would refuse."""


def _type_name(types: Any) -> str:
    if isinstance(types, tuple):
        return " | ".join(t.__name__ for t in types)
    return types.__name__


def check_params(params: dict, spec: dict, required: tuple = ()) -> dict:
    """Check parameter names and JSON types like the server's request validation; return them."""
    for name in params:
        if name not in spec:
            raise ParameterError(f"Argument error: got an unexpected keyword argument '{name}'")
    for name in required:
        if name not in params:
            raise ParameterError(f"Argument error: missing a required argument: '{name}'")
    for name, value in params.items():
        types = spec[name]
        if types is object or value is None:
            continue
        if types is float and isinstance(value, int) and not isinstance(value, bool):
            raise ParameterError(f"Type error: '{name}' must be of type float, got int.")
        if not isinstance(value, types):
            raise ParameterError(f"Type error: '{name}' must be of type {_type_name(types)}, "
                                 f"got {type(value).__name__}.")
    return params


def _body(request: Request) -> dict:
    """The JSON object of a POST body ({} when empty)."""
    if not request.body:
        return {}
    obj = request.json()
    if not isinstance(obj, dict):
        raise ParameterError("failed to load JSON")
    return obj


def _query(request: Request, spec: dict) -> dict:
    """GET parameters cast to the parameter types, as the server does (a list is given as JSON text)."""
    out = {}
    for key, value in request.params.items():
        types = spec.get(key, str)
        try:
            if types in (int, float, NUMBER):
                out[key] = float(value) if types is float else int(value)
            elif types in (list, dict):
                out[key] = json.loads(value)
            else:
                out[key] = value
        except (TypeError, ValueError):
            raise ParameterError(f"Type error: '{key}' could not be casted to type {_type_name(types)}.") from None
    return out


# ------------------------------------------------------------------------------------ pilot API
def acquire_jobs(app: "App", request: Request) -> Reply:
    """Hand out the oldest activated job(s) of the queue (site_name or computing_element)."""
    params = check_params(_body(request), ACQUIRE_JOBS, ("site_name",))
    sites = {str(params.get("site_name") or ""), str(params.get("computing_element") or "")}
    n_jobs = params.get("n_jobs")
    jobs = []
    for _ in range(max(1, n_jobs or 1)):
        found = app.store.pop_job(sites, bool(params.get("background")))
        if found is None:
            break
        pandaid, definition = found
        jobs.append(proto.job_reply(definition, pandaid))
    request.note = ",".join(job["PandaID"] for job in jobs) or "no job"
    if not jobs:
        return envelope(False, "No jobs in PanDA")
    app.notify()
    if n_jobs is not None:
        return envelope(True, data={"StatusCode": proto.SC_SUCCESS, "jobs": jobs})
    return envelope(True, data=jobs[0])


def _legacy_update(params: dict) -> dict:
    """An update_job parameter set under the legacy updateJob field names."""
    fields = {}
    for name, value in params.items():
        legacy = UPDATE_JOB[name][1]
        if legacy and value is not None:
            fields[legacy] = value
    return fields


def update_job(app: "App", request: Request) -> Reply:
    """Record a job update (stored like a legacy updateJob) and deliver a pending command."""
    params = check_params(_body(request), {k: v[0] for k, v in UPDATE_JOB.items()}, _UPDATE_REQUIRED)
    return _update_one(app, request, params)


def _update_one(app: "App", request: Optional[Request], params: dict) -> Reply:
    if params.get("job_status") not in proto.ACCEPTED_STATES:
        return envelope(False, f"Invalid job status: {params.get('job_status')}",
                        {"StatusCode": proto.SC_FAILED})
    for key in ("start_time", "end_time"):
        if params.get(key) is not None and not _valid_time(params[key]):
            logger.warning("update_job %s: %s=%r is not %s (the server ignores it)", params.get("job_id"), key,
                           params[key], REST_TIME)
    reply = panda._apply_update(app, _legacy_update(params))
    if request is not None:
        request.note = f"{params.get('job_id')}:{params.get('job_status')}"
    return envelope(True, data=reply)


def _valid_time(value: Any) -> bool:
    try:
        datetime.strptime(str(value), REST_TIME)
        return True
    except ValueError:
        return False


def update_jobs_bulk(app: "App", request: Request) -> Reply:
    """Apply a list of update_job parameter sets."""
    params = check_params(_body(request), UPDATE_JOBS_BULK, ("job_list",))
    spec = {k: v[0] for k, v in UPDATE_JOB.items()}
    data = []
    for item in params["job_list"]:
        try:
            data.append(_update_one(app, None, check_params(dict(item), spec, _UPDATE_REQUIRED)).body)
        except (ParameterError, TypeError, ValueError) as exc:
            data.append({"success": False, "message": str(exc), "data": None})
    return envelope(True, data=data)


def get_job_status(app: "App", request: Request) -> Reply:
    """State and attempt number of each job id."""
    params = check_params(_query(request, GET_JOB_STATUS), GET_JOB_STATUS, ("job_ids",))
    ids = []
    for value in params["job_ids"]:
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            ids.append(-1)
    data = []
    for job_id, found in zip(ids, app.store.job_states(ids)):
        if found is None:
            data.append({"job_id": job_id, "status": "not found", "attempt_number": 0})
        else:
            data.append({"job_id": job_id, "status": found[0], "attempt_number": int(found[1] or 0)})
    return envelope(True, data=data)


def update_worker_status(app: "App", request: Request) -> Reply:
    """Accept a worker status (started or finished)."""
    params = check_params(_body(request), UPDATE_WORKER_STATUS, ("worker_id", "harvester_id", "status"))
    if params["status"] not in ("started", "finished"):
        return envelope(False, "Invalid worker state. The worker state has to be in ('started', 'finished')")
    request.note = f"{params['worker_id']}:{params['status']}"
    return envelope(True)


def update_worker_node(app: "App", request: Request) -> Reply:
    """Accept worker-node details (not modelled)."""
    _body(request)
    return envelope(True)


# ------------------------------------------------------------------------------------ event API
def acquire_event_ranges(app: "App", request: Request) -> Reply:
    """Assign up to ``n_ranges`` ready ranges of ``job_id``; each range once."""
    params = check_params(_body(request), ACQUIRE_EVENT_RANGES, ("job_id", "jobset_id"))
    ranges = app.store.take_ranges(int(params["job_id"]), int(params.get("n_ranges", 10) or 0),
                                   str(params.get("jobset_id", "") or ""))
    request.note = f"{params['job_id']}:{len(ranges)}"
    app.notify()
    return envelope(True, data=ranges)


def update_event_ranges(app: "App", request: Request) -> Reply:
    """Record range states (``event_ranges`` is JSON text, version 0 or 1)."""
    params = check_params(_body(request), UPDATE_EVENT_RANGES, ("event_ranges",))
    try:
        payload = json.loads(params["event_ranges"])
    except ValueError:
        return envelope(False, "failed to load JSON")
    returns = []
    for entry in proto.flatten_range_updates(payload):
        range_id = str(entry.get("eventRangeID", ""))
        returns.append(bool(range_id) and app.store.update_range(range_id, str(entry.get("eventStatus", "")), entry))
    request.note = f"v{params.get('version', 0)}:{len(returns)}"
    app.notify()
    return envelope(True, data={"Returns": returns, "Commands": {}})


def update_single_event_range(app: "App", request: Request) -> Reply:
    """Record one range state."""
    params = check_params(_body(request), UPDATE_SINGLE_EVENT_RANGE, ("event_range_id", "event_range_status"))
    done = app.store.update_range(params["event_range_id"], params["event_range_status"], dict(params))
    app.notify()
    return envelope(done, "" if done else "database error in the PanDA server", {"Command": None} if done else None)


def get_available_event_range_count(app: "App", request: Request) -> Reply:
    """How many ranges of a job are still ready."""
    params = check_params(_query(request, EVENT_RANGE_COUNT), EVENT_RANGE_COUNT, ("job_id", "jobset_id", "task_id"))
    ranges = app.store.ranges(int(params["job_id"]))
    return envelope(True, data=sum(1 for r in ranges if r["status"] == "ready"))


def get_event_range_statuses(app: "App", request: Request) -> Reply:
    """``{job_id: {range_id: {status, error, dialog}}}`` for ``[{"task_id", "job_id"}, ...]``."""
    params = check_params(_query(request, EVENT_RANGE_STATUSES), EVENT_RANGE_STATUSES, ("job_task_ids",))
    try:
        pairs = json.loads(params["job_task_ids"])
    except ValueError:
        return envelope(False, "failed to load JSON")
    data: dict = {}
    for pair in pairs:
        job_id = int(pair["job_id"])
        data[str(job_id)] = {r["range_id"]: {"status": r["status"], "error": None, "dialog": None}
                             for r in app.store.ranges(job_id)}
    return envelope(True, data=data)


# ------------------------------------------------------------------------------------ credentials API
GET_PROXY = {"role": str, "dn": str}
GET_KEY_PAIR = {"public_key_name": str, "private_key_name": str}


def get_proxy(app: "App", request: Request) -> Reply:
    """The configured proxy (``creds/get_proxy``; data ``{user_proxy}``), like ``getProxy``."""
    check_params(_query(request, GET_PROXY), GET_PROXY)
    proxy = app.settings.get("proxy")
    if not proxy:
        return envelope(False, "'proxy' not found")
    return envelope(True, data={"user_proxy": proxy})


def get_key_pair(app: "App", request: Request) -> Reply:
    """A configured key pair by names (``creds/get_key_pair``; data ``{public_key, private_key}``)."""
    params = check_params(_query(request, GET_KEY_PAIR), GET_KEY_PAIR, ("public_key_name", "private_key_name"))
    keys = app.settings.get("keypairs") or {}
    for name in (params["public_key_name"], params["private_key_name"]):
        if name not in keys:
            return envelope(False, f"Failed since {name} is missing")
    return envelope(True, data={"public_key": keys[params["public_key_name"]],
                                "private_key": keys[params["private_key_name"]]})


#: (family, method) -> (HTTP verb, handler)
METHODS: dict[tuple[str, str], tuple[str, Callable[["App", Request], Reply]]] = {
    ("pilot", "acquire_jobs"): ("POST", acquire_jobs),
    ("pilot", "update_job"): ("POST", update_job),
    ("pilot", "update_jobs_bulk"): ("POST", update_jobs_bulk),
    ("pilot", "get_job_status"): ("GET", get_job_status),
    ("pilot", "update_worker_status"): ("POST", update_worker_status),
    ("pilot", "update_worker_node"): ("POST", update_worker_node),
    ("event", "acquire_event_ranges"): ("POST", acquire_event_ranges),
    ("event", "update_event_ranges"): ("POST", update_event_ranges),
    ("event", "update_single_event_range"): ("POST", update_single_event_range),
    ("event", "get_available_event_range_count"): ("GET", get_available_event_range_count),
    ("event", "get_event_range_statuses"): ("GET", get_event_range_statuses),
    ("creds", "get_proxy"): ("GET", get_proxy),
    ("creds", "get_key_pair"): ("GET", get_key_pair),
}


def dispatch(app: "App", request: Request) -> Reply:
    """Route ``/api/v1/<family>/<method>`` to its handler, with the server's checks."""
    if not app.settings.get("rest_api", True):
        return error(404, "Not Found")
    family, method = request.groups["family"], request.groups["method"]
    entry = METHODS.get((family, method))
    if entry is None:
        return error(404, f"unknown API method {family}/{method}")
    verb, handler = entry
    if request.verb != verb:
        return envelope(False, f"expecting {verb}, received {request.verb}")
    try:
        return handler(app, request)
    except ParameterError as exc:
        request.note = str(exc)[:80]
        return envelope(False, str(exc))


ROUTES = [
    Route(("GET", "POST"), r"/api/v1/(?P<family>pilot|event|creds)/(?P<method>[a-z_]+)", dispatch, name="{method}",
          record=True),
]
