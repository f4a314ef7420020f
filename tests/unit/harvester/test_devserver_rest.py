"""The dev server's REST API (pilot/devserver/rest.py) through App.handle, without sockets."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from pilot.devserver.app import App
from pilot.devserver.info import InfoData
from pilot.devserver.routing import Request
from pilot.devserver.store import Store


@pytest.fixture
def app(tmp_path):
    store = Store(":memory:")
    yield App(store, InfoData.create(str(tmp_path / "storage")))
    store.close()


def call(app, verb, path, body=None, query=""):
    data = json.dumps(body).encode() if body is not None else b""
    outcome = app.handle(Request(verb, path, query, {"Content-Type": "application/json"}, data))
    return outcome.status, json.loads(outcome.body)


def submit(app, **job):
    return app.store.add_job({"jobPars": "x", **job})


def test_bulk_update_and_status(app):
    a, b = submit(app), submit(app)
    status, reply = call(app, "POST", "/api/v1/pilot/update_jobs_bulk", {"job_list": [
        {"job_id": a, "job_status": "running"}, {"job_id": b, "job_status": "bogus"},
        {"job_id": str(b), "job_status": "running"}]})
    assert status == 200 and reply["success"]
    assert [r["success"] for r in reply["data"]] == [True, False, False]
    assert reply["data"][2]["message"].startswith("Type error")
    status, reply = call(app, "GET", "/api/v1/pilot/get_job_status", query=urlencode({"job_ids": f"[{a}, {b}]"}))
    assert [(d["job_id"], d["status"]) for d in reply["data"]] == [(a, "running"), (b, "activated")]


def test_event_range_calls(app):
    pandaid = submit(app)
    ids = app.store.add_ranges(pandaid, [{"startEvent": 1}, {"startEvent": 2}])
    query = urlencode({"job_id": pandaid, "jobset_id": 1, "task_id": 1})
    assert call(app, "GET", "/api/v1/event/get_available_event_range_count", query=query)[1]["data"] == 2
    _, reply = call(app, "POST", "/api/v1/event/acquire_event_ranges", {"job_id": pandaid, "jobset_id": 1,
                                                                        "n_ranges": 1})
    assert [r["eventRangeID"] for r in reply["data"]] == ids[:1]
    _, reply = call(app, "POST", "/api/v1/event/update_single_event_range",
                    {"event_range_id": ids[0], "event_range_status": "finished"})
    assert reply == {"success": True, "message": "", "data": {"Command": None}}
    _, reply = call(app, "POST", "/api/v1/event/update_event_ranges",
                    {"event_ranges": json.dumps([{"eventRangeID": ids[1], "eventStatus": "failed"}]), "version": 0})
    assert reply["data"] == {"Returns": [True], "Commands": {}}
    query = urlencode({"job_task_ids": json.dumps([{"task_id": 1, "job_id": pandaid}])})
    _, reply = call(app, "GET", "/api/v1/event/get_event_range_statuses", query=query)
    assert {k: v["status"] for k, v in reply["data"][str(pandaid)].items()} == {ids[0]: "finished", ids[1]: "failed"}


def test_server_generations_and_errors(app):
    assert call(app, "POST", "/api/v1/pilot/no_such_thing", {})[0] == 404
    assert call(app, "POST", "/api/v1/pilot/acquire_jobs", {})[1]["message"] == \
        "Argument error: missing a required argument: 'site_name'"
    _, reply = call(app, "POST", "/api/v1/pilot/update_worker_status",
                    {"worker_id": 1, "harvester_id": "h", "status": "sleeping"})
    assert not reply["success"]
    app.settings["rest_api"] = False
    assert call(app, "POST", "/api/v1/pilot/acquire_jobs", {"site_name": "Q"})[0] == 404
    app.settings["legacy_api"] = False
    outcome = app.handle(Request("POST", "/server/panda/getJob", "", {}, b"siteName=Q"))
    assert outcome.status == 403 and b"method getJob is forbidden" in outcome.body
    assert [r["method"] for r in app.store.requests()][-1] == "getJob"
