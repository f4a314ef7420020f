"""Admin API (``/admin/...``), the Rucio trace sink (``/traces/``) and generic sinks (``/sink/<name>``).

Admin routes are never subject to failure injection. All admin replies are JSON.

=====================================  ==========================================================
``GET  /admin/status``                 pid, URLs, table counts
``GET  /admin/jobs``                   job summaries
``GET  /admin/job/<id>``               full record: state, final update (decoded), updates, ranges
``GET  /admin/updates/<id>``           raw updates of a job
``GET  /admin/wait/<id>?until=final``  block until the job is final (or in state ``until``), 408 on
                                       timeout (``timeout`` seconds, default 30)
``POST /admin/submit``                 ``{job, count}`` or a bare job dictionary -> ``{pandaids}``
``POST /admin/command``                ``{pandaid, command}``: delivered once in an updateJob reply
``POST /admin/requeue``                ``{pandaid}``: hand the same PandaID out again (duplicate-job fault)
``POST /admin/eventranges``            ``{pandaid, ranges: [...]}``; ``GET /admin/eventranges/<id>``
``GET|POST|DELETE /admin/inject``      list / add (a rule or ``{rules: [...]}``) / clear rules
``POST /admin/reset``                  ``{scope: all|rules|data}`` (default all)
``GET|POST /admin/queuedata``          all queues / ``{queue, data, merge=true}``
``GET|POST /admin/storagedata``        all storages / ``{name, data, merge=true}``
``GET|POST /admin/settings``           ``{proxy, keypairs}`` for getProxy / getKeyPair; ``rest_api``, ``legacy_api``
``GET  /admin/requests?method=M``      recorded protocol/info/trace requests (time, fields, bytes)
``GET  /admin/traces``                 stored trace reports
``GET  /admin/sink/<name>``            documents posted to ``/sink/<name>``
=====================================  ==========================================================
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import parse_qs

from .injection import Rule
from .protocol import BadRequest, interpret_update
from .routing import Reply, Request, Route, error
from .store import Store

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .app import App

MAX_WAIT = 600.0


def job_record(store: Store, pandaid: int) -> Optional[dict[str, Any]]:
    """Assemble everything known about a job: state, final update (decoded), updates, event ranges."""
    job = store.get_job(pandaid)
    if job is None:
        return None
    updates = store.updates(pandaid)
    final = next((item for item in updates if item["is_final"]), None)
    job["n_updates"] = len(updates)
    job["n_duplicates"] = sum(1 for item in updates if item["duplicate"])
    job["final_update"] = interpret_update(final["fields"]) if final else None
    job["updates"] = updates
    job["eventranges"] = store.ranges(pandaid)
    return job


def _body(request: Request) -> Any:
    """Decode a JSON admin body; empty gives an empty dict."""
    data = request.json()
    return {} if data is None else data


def _query(request: Request, key: str, default: str = "") -> str:
    """Return one query-string value."""
    return parse_qs(request.query).get(key, [default])[-1]


def _pandaid(request: Request) -> int:
    """The ``<id>`` path group as an int."""
    return int(request.groups["pandaid"])


def _status(app: "App", request: Request) -> Reply:
    """Server identity and table counts."""
    return Reply(200, {**app.describe(), "counts": app.store.counts(), "pid": os.getpid()})


def _jobs(app: "App", request: Request) -> Reply:
    """All job summaries."""
    return Reply(200, app.store.list_jobs())


def _job(app: "App", request: Request) -> Reply:
    """One job's full record."""
    record = job_record(app.store, _pandaid(request))
    return Reply(200, record) if record else error(404, f"unknown PandaID {request.groups['pandaid']}")


def _updates(app: "App", request: Request) -> Reply:
    """One job's updates."""
    return Reply(200, app.store.updates(_pandaid(request)))


def _wait(app: "App", request: Request) -> Reply:
    """Block until the job is final (or reaches state ``until``); 408 with the record on timeout."""
    pandaid = _pandaid(request)
    until = _query(request, "until", "final")
    timeout = min(MAX_WAIT, float(_query(request, "timeout", "30")))

    def reached() -> bool:
        job = app.store.get_job(pandaid)
        if job is None:
            return False
        return bool(job["final_state"]) if until == "final" else job["state"] == until or bool(job["final_state"])

    done = app.wait_for(reached, timeout)
    record = job_record(app.store, pandaid)
    if record is None:
        return error(404, f"unknown PandaID {pandaid}")
    return Reply(200 if done else 408, record)


def submit_jobs(app: "App", job: dict[str, Any], count: int = 1) -> list[int]:
    """Store ``count`` copies of a job definition; returns their PandaIDs.

    ``PandaID`` in the definition is used for a single job and ignored when ``count`` > 1. The queue
    comes from the private key ``_queue`` (or ``computingSite``); ``_eventRanges`` become event ranges.
    """
    definition = dict(job)
    given = definition.pop("PandaID", None)
    queue = definition.get("_queue") or definition.get("computingSite") or None
    ranges = definition.get("_eventRanges") or []
    ids = []
    for index in range(max(1, count)):
        pandaid = int(given) if given not in (None, "", "NULL") and count <= 1 and index == 0 else None
        new_id = app.store.add_job(definition, pandaid=pandaid, queue=queue)
        if ranges:
            app.store.add_ranges(new_id, list(ranges))
        ids.append(new_id)
    app.notify()
    return ids


def _submit(app: "App", request: Request) -> Reply:
    """Submit a job definition (``{job, count}`` or the bare dictionary)."""
    body = _body(request)
    if not isinstance(body, dict):
        return error(400, "expected a JSON object")
    if isinstance(body.get("job"), dict):
        job, count = body["job"], int(body.get("count", 1))
    else:
        job, count = body, 1
    try:
        ids = submit_jobs(app, job, count)
    except KeyError as exc:
        return error(409, str(exc.args[0]))
    return Reply(200, {"pandaids": ids})


def _requeue(app: "App", request: Request) -> Reply:
    """Make a job activated again, so the next getJob hands out the same PandaID (duplicate-job fault)."""
    body = _body(request)
    try:
        pandaid = int(body["pandaid"])
    except (KeyError, TypeError, ValueError):
        return error(400, "expected {pandaid}")
    if not app.store.requeue(pandaid):
        return error(404, f"unknown PandaID {pandaid}")
    return Reply(200, {"pandaid": pandaid, "state": "activated"})


def _command(app: "App", request: Request) -> Reply:
    """Queue a command for a job's next updateJob reply."""
    body = _body(request)
    try:
        pandaid = int(body["pandaid"])
    except (KeyError, TypeError, ValueError):
        return error(400, "expected {pandaid, command}")
    if not app.store.set_command(pandaid, body.get("command")):
        return error(404, f"unknown PandaID {pandaid}")
    return Reply(200, {"pandaid": pandaid, "command": body.get("command")})


def _add_ranges(app: "App", request: Request) -> Reply:
    """Attach event ranges to a job."""
    body = _body(request)
    try:
        pandaid = int(body["pandaid"])
        ranges = list(body["ranges"])
    except (KeyError, TypeError, ValueError):
        return error(400, "expected {pandaid, ranges: [...]}")
    if app.store.get_job(pandaid) is None:
        return error(404, f"unknown PandaID {pandaid}")
    try:
        return Reply(200, {"pandaid": pandaid, "ids": app.store.add_ranges(pandaid, ranges)})
    except sqlite3.IntegrityError as exc:  # a range id that already exists
        return error(409, str(exc))


def _ranges(app: "App", request: Request) -> Reply:
    """A job's event ranges with their states."""
    return Reply(200, app.store.ranges(_pandaid(request)))


def _inject_list(app: "App", request: Request) -> Reply:
    """Active injection rules with counters."""
    return Reply(200, app.injector.rules())


def _inject_add(app: "App", request: Request) -> Reply:
    """Add one rule, or several given as ``{rules: [...]}``."""
    body = _body(request)
    items = body.get("rules") if isinstance(body, dict) and "rules" in body else [body]
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        return error(400, "expected a rule object or {rules: [...]}")
    try:
        added: list[Rule] = [app.injector.add(item) for item in items]
    except (TypeError, ValueError) as exc:
        return error(400, str(exc))
    return Reply(200, {"added": [rule.to_dict() for rule in added], "rules": app.injector.rules()})


def _inject_clear(app: "App", request: Request) -> Reply:
    """Remove every rule."""
    app.injector.clear()
    return Reply(200, {"rules": []})


def _reset(app: "App", request: Request) -> Reply:
    """Reset rules, data, or both (default)."""
    body = _body(request)
    scope = body.get("scope", "all") if isinstance(body, dict) else "all"
    if scope not in ("all", "rules", "data"):
        return error(400, "scope must be all, rules or data")
    app.reset(scope)
    return Reply(200, {"reset": scope})


def _get_queuedata(app: "App", request: Request) -> Reply:
    """All queues."""
    return Reply(200, app.info.queues())


def _set_queuedata(app: "App", request: Request) -> Reply:
    """Create or change a queue."""
    body = _body(request)
    if not isinstance(body, dict) or not body.get("queue") or not isinstance(body.get("data"), dict):
        return error(400, "expected {queue, data, merge}")
    return Reply(200, app.info.set_queue(body["queue"], body["data"], bool(body.get("merge", True))))


def _get_storagedata(app: "App", request: Request) -> Reply:
    """All storages."""
    return Reply(200, app.info.storages())


def _set_storagedata(app: "App", request: Request) -> Reply:
    """Create or change a storage."""
    body = _body(request)
    if not isinstance(body, dict) or not body.get("name") or not isinstance(body.get("data"), dict):
        return error(400, "expected {name, data, merge}")
    return Reply(200, app.info.set_storage(body["name"], body["data"], bool(body.get("merge", True))))


def _get_settings(app: "App", request: Request) -> Reply:
    """The getProxy / getKeyPair settings."""
    return Reply(200, app.settings)


def _set_settings(app: "App", request: Request) -> Reply:
    """Change ``proxy``, ``keypairs``, and the protocol generations served (``rest_api``, ``legacy_api``)."""
    body = _body(request)
    if not isinstance(body, dict) or set(body) - {"proxy", "keypairs", "rest_api", "legacy_api"}:
        return error(400, "expected {proxy, keypairs, rest_api, legacy_api}")
    app.settings.update(body)
    return Reply(200, app.settings)


def _requests(app: "App", request: Request) -> Reply:
    """Recorded protocol requests, optionally of one method."""
    return Reply(200, app.store.requests(_query(request, "method") or None))


def _traces(app: "App", request: Request) -> Reply:
    """Stored trace reports."""
    return Reply(200, app.store.traces())


def _sink_docs(app: "App", request: Request) -> Reply:
    """Documents of one sink."""
    return Reply(200, app.store.sink(request.groups["name"]))


def _post_trace(app: "App", request: Request) -> Reply:
    """Store Rucio trace reports (one dict or a list); answers 201 Created like Rucio."""
    try:
        body = request.json()
    except BadRequest:
        body = {"_raw": request.body.decode("utf-8", errors="replace")}
    for item in body if isinstance(body, list) else [body]:
        app.store.add_trace(item)
    return Reply(201, "Created")


def _post_sink(app: "App", request: Request) -> Reply:
    """Store one JSON document (or raw text) in a named sink."""
    try:
        body = request.json()
    except BadRequest:
        body = {"_raw": request.body.decode("utf-8", errors="replace")}
    doc_id = app.store.add_sink(request.groups["name"], body)
    return Reply(200, {"StatusCode": 0, "id": doc_id, "time": time.time()})


_ID = r"(?P<pandaid>\d+)"
_NAME = r"(?P<name>[A-Za-z0-9_.\-]+)"

ROUTES = [
    Route(("GET",), r"/admin/status", _status),
    Route(("GET",), r"/admin/jobs", _jobs),
    Route(("GET",), r"/admin/job/" + _ID, _job),
    Route(("GET",), r"/admin/updates/" + _ID, _updates),
    Route(("GET",), r"/admin/wait/" + _ID, _wait),
    Route(("POST",), r"/admin/submit", _submit),
    Route(("POST",), r"/admin/command", _command),
    Route(("POST",), r"/admin/requeue", _requeue),
    Route(("POST",), r"/admin/eventranges", _add_ranges),
    Route(("GET",), r"/admin/eventranges/" + _ID, _ranges),
    Route(("GET",), r"/admin/inject", _inject_list),
    Route(("POST",), r"/admin/inject", _inject_add),
    Route(("DELETE",), r"/admin/inject", _inject_clear),
    Route(("POST",), r"/admin/inject/clear", _inject_clear),
    Route(("POST",), r"/admin/reset", _reset),
    Route(("GET",), r"/admin/queuedata", _get_queuedata),
    Route(("POST",), r"/admin/queuedata", _set_queuedata),
    Route(("GET",), r"/admin/storagedata", _get_storagedata),
    Route(("POST",), r"/admin/storagedata", _set_storagedata),
    Route(("GET",), r"/admin/settings", _get_settings),
    Route(("POST",), r"/admin/settings", _set_settings),
    Route(("GET",), r"/admin/requests", _requests),
    Route(("GET",), r"/admin/traces", _traces),
    Route(("GET",), r"/admin/sink/" + _NAME, _sink_docs),
    Route(("POST", "PUT"), r"/traces/?", _post_trace, name="traces", record=True),
    Route(("POST", "PUT"), r"/sink/" + _NAME, _post_sink, name="sink"),
]
