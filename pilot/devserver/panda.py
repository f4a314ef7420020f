"""The PanDA job-dispatcher methods under ``/server/panda/<method>``.

Each method is a function ``(app, request) -> Reply`` registered in ``METHODS``; the route below
dispatches on the method name, which is also the name failure-injection rules use. Replies are JSON
with the dispatcher's ``StatusCode`` conventions (see ``protocol``). Every call is recorded in the
``requests`` table by the server; updateJob calls are also stored, per job, in ``updates``.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Callable

from . import protocol as proto
from .routing import Reply, Request, Route, error

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .app import App

logger = logging.getLogger(__name__)

RESOURCE_TYPES = [
    {"resource_name": "SCORE", "mincore": None, "maxcore": 1, "minrampercore": None, "maxrampercore": None},
    {"resource_name": "MCORE", "mincore": 2, "maxcore": None, "minrampercore": None, "maxrampercore": None},
    {"resource_name": "SCORE_HIMEM", "mincore": None, "maxcore": 1, "minrampercore": 2001, "maxrampercore": None},
    {"resource_name": "MCORE_HIMEM", "mincore": 2, "maxcore": None, "minrampercore": 2001, "maxrampercore": None},
]


def get_job(app: "App", request: Request) -> Reply:
    """Hand out the oldest activated job of the requesting queue (siteName or computingElement).

    With ``nJobs`` the reply is the bulk form ``{StatusCode, jobs: [...]}`` that Harvester uses.
    """
    params = request.params
    sites = {proto.text_field(params, "siteName"), proto.text_field(params, "computingElement")}
    bulk = "nJobs" in params
    wanted = max(1, proto.int_field(params, "nJobs", default=1)) if bulk else 1
    background = proto.text_field(params, "background") == "True"  # the dispatcher's test of the legacy form
    jobs = []
    for _ in range(wanted):
        found = app.store.pop_job(sites, background)
        if found is None:
            break
        pandaid, definition = found
        jobs.append(proto.job_reply(definition, pandaid))
    request.note = ",".join(job["PandaID"] for job in jobs) or "no job"
    if jobs:
        logger.info("getJob from %s: sent PandaID %s", sorted(s for s in sites if s), request.note)
        app.notify()
        return Reply(200, {"StatusCode": proto.SC_SUCCESS, "jobs": jobs} if bulk else jobs[0])
    return Reply(200, proto.no_jobs_reply())


def _apply_update(app: "App", fields: dict[str, Any]) -> dict[str, Any]:
    """Apply one updateJob field set and return the reply dictionary."""
    job_id = proto.text_field(fields, "jobId", "PandaID")
    state = proto.text_field(fields, "state", "jobStatus")
    if not job_id or job_id == "NULL":
        return {"StatusCode": proto.SC_SUCCESS}
    try:
        pandaid = int(job_id)
    except ValueError:
        return {"StatusCode": proto.SC_FAILED, "errorDialog": f"bad jobId {job_id!r}"}
    if state not in proto.ACCEPTED_STATES:
        logger.warning("updateJob %s: invalid state %r ignored", pandaid, state)
        return {"StatusCode": proto.SC_SUCCESS}
    outcome = app.store.record_update(pandaid, state, dict(fields))
    app.notify()
    if not outcome.found:
        logger.warning("updateJob for unknown PandaID %s (state %s)", pandaid, state)
        return {"StatusCode": proto.SC_FAILED, "errorDialog": f"PandaID {pandaid} not found"}
    logger.info("updateJob %s: %s%s -> command %s", pandaid, state,
                f" ({outcome.note})" if outcome.note else "", outcome.command)
    return {"StatusCode": proto.SC_SUCCESS, "command": outcome.command}


def update_job(app: "App", request: Request) -> Reply:
    """Record a job update, move the job's state and deliver a pending command once."""
    reply = _apply_update(app, request.params)
    request.note = f"{proto.text_field(request.params, 'jobId')}:{proto.text_field(request.params, 'state')}"
    return Reply(200, reply)


def update_jobs_in_bulk(app: "App", request: Request) -> Reply:
    """Apply a JSON ``jobList`` of update dictionaries (each with jobId and state)."""
    raw = request.params.get("jobList", "[]")
    try:
        job_list = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return Reply(200, {"StatusCode": proto.SC_FAILED, "errorDialog": "jobList is not JSON"})
    if not isinstance(job_list, list):
        return Reply(200, {"StatusCode": proto.SC_FAILED, "errorDialog": "jobList must be a list"})
    returns = [_apply_update(app, item) if isinstance(item, dict) else {"StatusCode": proto.SC_FAILED}
               for item in job_list]
    return Reply(200, {"StatusCode": proto.SC_SUCCESS, "Returns": returns})


def get_status(app: "App", request: Request) -> Reply:
    """Report state and attemptNr of space- or comma-separated ids, joined with '+' like the server."""
    text = proto.text_field(request.params, "ids")
    ids = [part for part in text.replace(",", " ").split() if part]
    numeric = []
    for part in ids:
        try:
            numeric.append(int(part))
        except ValueError:
            numeric.append(-1)
    states = app.store.job_states(numeric)
    status = "+".join(found[0] if found else "notfound" for found in states)
    attempts = "+".join(found[1] if found else "0" for found in states)
    return Reply(200, {"StatusCode": proto.SC_SUCCESS, "status": status, "attemptNr": attempts})


def get_event_ranges(app: "App", request: Request) -> Reply:
    """Assign up to ``nRanges`` (default 10) ready event ranges of ``pandaID``; each range once."""
    params = request.params
    pandaid = proto.int_field(params, "pandaID", "PandaID", default=-1)
    count = proto.int_field(params, "nRanges", default=10)
    ranges = app.store.take_ranges(pandaid, count, proto.text_field(params, "jobsetID")) if pandaid >= 0 else []
    request.note = f"{pandaid}:{len(ranges)}"
    app.notify()
    return Reply(200, {"StatusCode": proto.SC_SUCCESS, "eventRanges": ranges})


def update_event_ranges(app: "App", request: Request) -> Reply:
    """Record reported range states (version 0 flat list or version 1 groups in ``eventRanges``)."""
    raw = request.params.get("eventRanges", "[]")
    try:
        payload = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return Reply(200, {"StatusCode": proto.SC_FAILED, "errorDialog": "eventRanges is not JSON"})
    returns = []
    for entry in proto.flatten_range_updates(payload):
        range_id = str(entry.get("eventRangeID", ""))
        status = str(entry.get("eventStatus", ""))
        returns.append(bool(range_id) and app.store.update_range(range_id, status, entry))
    request.note = f"v{proto.text_field(request.params, 'version', default='0')}:{len(returns)}"
    app.notify()
    return Reply(200, {"StatusCode": proto.SC_SUCCESS, "Returns": returns, "Command": None})


def get_proxy(app: "App", request: Request) -> Reply:
    """Return the configured proxy text (StatusCode 90 when none is configured)."""
    proxy = app.settings.get("proxy")
    if not proxy:
        return Reply(200, {"StatusCode": proto.SC_PROXYERROR, "errorDialog": "proxy not found"})
    return Reply(200, {"StatusCode": proto.SC_SUCCESS, "errorDialog": "", "userProxy": proxy})


def get_key_pair(app: "App", request: Request) -> Reply:
    """Return a configured key pair by names (StatusCode 80 when a key is missing)."""
    keys = app.settings.get("keypairs") or {}
    public = proto.text_field(request.params, "publicKeyName")
    private = proto.text_field(request.params, "privateKeyName")
    for name in (public, private):
        if name not in keys:
            return Reply(200, {"StatusCode": proto.SC_MISSKEY, "errorDialog": f"{name or '(no name)'} is missing"})
    return Reply(200, {"StatusCode": proto.SC_SUCCESS, "publicKey": keys[public], "privateKey": keys[private]})


def get_resource_types(app: "App", request: Request) -> Reply:
    """Return the standard resource types (Pilot 3 asks for them)."""
    return Reply(200, {"StatusCode": proto.SC_SUCCESS, "Returns": 0, "ResourceTypes": RESOURCE_TYPES})


def is_alive(app: "App", request: Request) -> Reply:
    """Liveness probe, answered in the server's plain-text form."""
    return Reply(200, "alive=yes")


def acknowledge(app: "App", request: Request) -> Reply:
    """Accept and record a call whose effect the dev server does not model."""
    return Reply(200, {"StatusCode": proto.SC_SUCCESS})


METHODS: dict[str, Callable[["App", Request], Reply]] = {
    "getJob": get_job,
    "updateJob": update_job,
    "updateJobsInBulk": update_jobs_in_bulk,
    "getStatus": get_status,
    "getEventRanges": get_event_ranges,
    "updateEventRanges": update_event_ranges,
    "getProxy": get_proxy,
    "getKeyPair": get_key_pair,
    "getResourceTypes": get_resource_types,
    "updateWorkerPilotStatus": acknowledge,
    "setDebugMode": acknowledge,
    "isAlive": is_alive,
}


def dispatch(app: "App", request: Request) -> Reply:
    """Route ``/server/panda/<method>`` to its handler (403 when the ``legacy_api`` setting is false)."""
    if not app.settings.get("legacy_api", True):
        return error(403, f"method {request.groups['method']} is forbidden")
    handler = METHODS.get(request.groups["method"])
    if handler is None:
        return error(404, f"unknown PanDA method {request.groups['method']}")
    return handler(app, request)


ROUTES = [
    Route(("GET", "POST"), r"/server/panda/(?P<method>[A-Za-z_]+)", dispatch, name="{method}", record=True),
]
