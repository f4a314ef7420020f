"""Unit tests of the dev server's request handling (App.handle), without sockets."""

import json
import threading
import time
from urllib.parse import urlencode

import pytest

from pilot.devserver.app import App, MALFORMED_BODY
from pilot.devserver.info import InfoData, default_queuedata, load_records
from pilot.devserver.routing import Request
from pilot.devserver.store import Store


@pytest.fixture
def app(tmp_path):
    store = Store(":memory:")
    application = App(store, InfoData.create(str(tmp_path / "storage")), settings={"proxy": "PEM"})
    yield application
    store.close()


def call(app, verb, path, query="", form=None, js=None, raw=b"", headers=None):
    """Run one request through the App."""
    body, hdrs = raw, dict(headers or {})
    if form is not None:
        body, hdrs = urlencode(form).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    if js is not None:
        body, hdrs = json.dumps(js).encode(), {"Content-Type": "application/json"}
    return app.handle(Request(verb, path, query, hdrs, body, client="127.0.0.1"))


def reply(outcome):
    """Decode a JSON outcome."""
    return json.loads(outcome.body)


def submit(app, job=None, count=1):
    return reply(call(app, "POST", "/admin/submit", js={"job": job or {"jobPars": "x"}, "count": count}))["pandaids"]


def panda(app, method, **form):
    return reply(call(app, "POST", f"/server/panda/{method}", form=form))


def test_unknown_paths_and_verbs(app):
    assert call(app, "GET", "/nowhere").status == 404
    assert call(app, "DELETE", "/server/panda/getJob").status == 405
    assert call(app, "POST", "/server/panda/noSuchMethod").status == 404


def test_getjob_matches_queue_and_records_requests(app):
    (pandaid,) = submit(app, {"jobPars": "x", "_queue": "Q1"})
    assert panda(app, "getJob", siteName="OTHER", computingElement="OTHER") == {
        "StatusCode": 20, "errorDialog": "no jobs in PanDA"}
    job = panda(app, "getJob", siteName="X", computingElement="Q1")
    assert job["PandaID"] == str(pandaid) and job["StatusCode"] == 0 and job["jobPars"] == "x"
    records = app.store.requests("getJob")
    assert [r["result"] for r in records] == ["no job", str(pandaid)]
    assert records[1]["fields"]["computingElement"] == "Q1"


def test_getjob_bulk_form(app):
    submit(app, count=3)
    bulk = panda(app, "getJob", siteName="Q", nJobs="2")
    assert bulk["StatusCode"] == 0 and len(bulk["jobs"]) == 2


def test_updatejob_flow_command_and_duplicates(app):
    (pandaid,) = submit(app)
    panda(app, "getJob", siteName="Q")
    assert reply(call(app, "POST", "/admin/command", js={"pandaid": pandaid, "command": "tail payload.stdout"}))
    expected = {"StatusCode": 0, "command": "tail payload.stdout"}
    assert panda(app, "updateJob", jobId=pandaid, state="running") == expected
    assert panda(app, "updateJob", jobId=pandaid, state="running")["command"] == "NULL"
    final = {"jobId": pandaid, "state": "finished", "pilotErrorCode": "0", "transExitCode": "0",
             "xml": json.dumps({"out.txt": {"guid": "G", "fsize": "3", "adler32": "0001", "surl": "file:///s"}}),
             "jobMetrics": "nEvents=1", "pilotTiming": "1|0|5|1|0"}
    assert panda(app, "updateJob", **final) == {"StatusCode": 0, "command": "NULL"}
    assert panda(app, "updateJob", **final) == {"StatusCode": 0, "command": "alreadydone"}
    record = reply(call(app, "GET", f"/admin/job/{pandaid}"))
    assert record["state"] == "finished" and record["n_updates"] == 4 and record["n_duplicates"] == 1
    assert record["final_update"]["xml"]["out.txt"]["guid"] == "G"
    assert record["final_update"]["pilotTiming"] == [1, 0, 5, 1, 0]
    assert reply(call(app, "GET", f"/admin/updates/{pandaid}"))[3]["duplicate"] is True


def test_updatejob_edge_cases(app):
    assert panda(app, "updateJob", jobId="NULL", state="running") == {"StatusCode": 0}
    assert panda(app, "updateJob", jobId="77", state="running")["StatusCode"] == 30
    (pandaid,) = submit(app)
    assert panda(app, "updateJob", jobId=pandaid, state="weird") == {"StatusCode": 0}
    assert app.store.updates(pandaid) == []
    assert panda(app, "updateJob", jobId="abc", state="running")["StatusCode"] == 30


def test_updatejob_accepts_pilot3_gzip_json(app):
    import gzip
    (pandaid,) = submit(app)
    body = gzip.compress(json.dumps({"jobId": pandaid, "state": "failed", "pilotErrorCode": 1099}).encode())
    out = call(app, "POST", "/server/panda/updateJob", raw=body, headers={"Content-Type": "application/json"})
    assert reply(out) == {"StatusCode": 0, "command": "NULL"}
    assert app.store.get_job(pandaid)["final_state"] == "failed"
    assert app.store.updates(pandaid)[0]["fields"]["pilotErrorCode"] == 1099


def test_update_jobs_in_bulk_and_get_status(app):
    a, b = submit(app, count=2)
    job_list = json.dumps([{"jobId": a, "state": "running"}, {"jobId": b, "state": "finished"}])
    out = panda(app, "updateJobsInBulk", jobList=job_list)
    assert out["StatusCode"] == 0 and [r["StatusCode"] for r in out["Returns"]] == [0, 0]
    expected = {"StatusCode": 0, "status": "running+finished+notfound", "attemptNr": "1+1+0"}
    assert panda(app, "getStatus", ids=f"{a} {b} 5") == expected
    assert panda(app, "updateJobsInBulk", jobList="nope")["StatusCode"] == 30


def test_event_ranges(app):
    ranges = [{"eventRangeID": f"r{i}", "LFN": "EVNT.root", "GUID": "G", "scope": "mc", "startEvent": i,
               "lastEvent": i} for i in range(1, 4)]
    (pandaid,) = submit(app, {"jobPars": "x", "_eventRanges": ranges[:2]})
    added = reply(call(app, "POST", "/admin/eventranges", js={"pandaid": pandaid, "ranges": ranges[2:]}))
    assert added["ids"] == ["r3"]
    got = panda(app, "getEventRanges", pandaID=pandaid, jobsetID="1", taskID="1", nRanges="2")
    assert got["StatusCode"] == 0 and [r["eventRangeID"] for r in got["eventRanges"]] == ["r1", "r2"]
    assert got["eventRanges"][0]["startEvent"] == 1
    rest = panda(app, "getEventRanges", pandaID=pandaid, nRanges="5")["eventRanges"]
    assert [r["eventRangeID"] for r in rest] == ["r3"]
    assert panda(app, "getEventRanges", pandaID=pandaid, nRanges="5")["eventRanges"] == []
    v1 = [{"zipFile": {"lfn": "z"}, "eventRanges": [{"eventRangeID": "r1", "eventStatus": "finished"}]}]
    out = panda(app, "updateEventRanges", version="1", eventRanges=json.dumps(v1))
    assert out["StatusCode"] == 0 and out["Returns"] == [True]
    v0 = [{"eventRangeID": "r2", "eventStatus": "failed", "errorCode": 1220}, {"eventRangeID": "zz"}]
    assert panda(app, "updateEventRanges", version="0", eventRanges=json.dumps(v0))["Returns"] == [True, False]
    states = {r["range_id"]: r["status"] for r in reply(call(app, "GET", f"/admin/eventranges/{pandaid}"))}
    assert states == {"r1": "finished", "r2": "failed", "r3": "assigned"}


def test_proxy_keypair_and_misc_methods(app):
    assert panda(app, "getProxy", role="atlas") == {"StatusCode": 0, "errorDialog": "", "userProxy": "PEM"}
    assert panda(app, "getKeyPair", publicKeyName="pub", privateKeyName="priv")["StatusCode"] == 80
    call(app, "POST", "/admin/settings", js={"keypairs": {"pub": "P", "priv": "S"}, "proxy": None})
    assert panda(app, "getKeyPair", publicKeyName="pub", privateKeyName="priv") == {
        "StatusCode": 0, "publicKey": "P", "privateKey": "S"}
    assert panda(app, "getProxy")["StatusCode"] == 90
    assert call(app, "POST", "/admin/settings", js={"bogus": 1}).status == 400
    assert panda(app, "getResourceTypes")["ResourceTypes"][0]["resource_name"] == "SCORE"
    assert panda(app, "updateWorkerPilotStatus", workerID="1", harvesterID="h", status="started") == {"StatusCode": 0}
    assert call(app, "GET", "/server/panda/isAlive").body == b"alive=yes"


def add_rule(app, **rule):
    out = call(app, "POST", "/admin/inject", js=rule)
    assert out.status == 200, out.body
    return reply(out)["added"][0]


def test_inject_status_does_not_process(app):
    submit(app)
    add_rule(app, method="getJob", action="status", status=503, count=1)
    out = call(app, "POST", "/server/panda/getJob", form={"siteName": "Q"})
    assert out.status == 503 and out.injected == "status"
    assert app.store.list_jobs()[0]["state"] == "activated"
    assert panda(app, "getJob", siteName="Q")["StatusCode"] == 0
    assert [r["injected"] for r in app.store.requests("getJob")] == ["status", None]


def test_inject_drop_with_and_without_processing(app):
    (pandaid,) = submit(app)
    add_rule(app, method="updateJob", action="drop", count=1)
    add_rule(app, method="updateJob", action="drop", count=1, process=True)
    out = call(app, "POST", "/server/panda/updateJob", form={"jobId": pandaid, "state": "finished"})
    assert out.drop and app.store.updates(pandaid) == []
    out = call(app, "POST", "/server/panda/updateJob", form={"jobId": pandaid, "state": "finished"})
    assert out.drop and app.store.get_job(pandaid)["final_state"] == "finished"
    assert panda(app, "updateJob", jobId=pandaid, state="finished")["command"] == "alreadydone"


def test_inject_malformed_and_partial(app):
    submit(app, count=2)
    add_rule(app, method="getJob", action="malformed", count=1)
    add_rule(app, method="getJob", action="partial", count=1)
    out = call(app, "POST", "/server/panda/getJob", form={"siteName": "Q"})
    assert out.status == 200 and out.body == MALFORMED_BODY
    out = call(app, "POST", "/server/panda/getJob", form={"siteName": "Q"})
    with pytest.raises(ValueError):
        json.loads(out.body)
    assert out.body.startswith(b'{"prodSourceLabel"')
    assert [j["state"] for j in app.store.list_jobs()] == ["sent", "sent"]  # both replies were lost, not the jobs


def test_inject_delay_after_and_wildcard_spares_admin(app):
    add_rule(app, method="*", action="delay", delay=0.2, after=1, count=1)
    start = time.monotonic()
    call(app, "GET", "/storagedata.json")
    fast = time.monotonic() - start
    call(app, "GET", "/admin/jobs")  # admin: neither counted nor delayed
    start = time.monotonic()
    out = call(app, "GET", "/storagedata.json")
    assert time.monotonic() - start >= 0.2 > fast
    assert out.status == 200 and "LOCAL_DISK" in reply(out)
    rules = reply(call(app, "GET", "/admin/inject"))
    assert rules[0]["seen"] == 2 and rules[0]["applied"] == 1 and rules[0]["exhausted"]
    assert reply(call(app, "DELETE", "/admin/inject")) == {"rules": []}


def test_inject_bad_rule_is_400(app):
    assert call(app, "POST", "/admin/inject", js={"action": "nuke"}).status == 400
    assert call(app, "POST", "/admin/inject", js={"rules": [{"action": "drop"}, {"method": "x"}]}).status == 200


def test_information_endpoints(app):
    bare = reply(call(app, "GET", "/cache/schedconfig/DEV_QUEUE.all.json"))
    assert bare["nickname"] == "DEV_QUEUE" and bare["state"] == "ACTIVE"
    assert bare["acopytools"]["pw"] == ["mv"] and bare["astorages"]["pr"] == ["LOCAL_DISK"]
    assert reply(call(app, "GET", "/cache/schedconfig/DEV_QUEUE.json")) == bare
    assert reply(call(app, "GET", "/queuedata/DEV_QUEUE.json")) == bare
    assert list(reply(call(app, "GET", "/cache/schedconfig/pandaqueues.json"))) == ["DEV_QUEUE"]
    assert call(app, "GET", "/cache/schedconfig/NOPE.all.json").status == 404
    keyed = reply(call(app, "GET", "/api/atlas/pandaqueue/query/", query="json&pandaqueue[]=DEV_QUEUE"))
    assert keyed == {"DEV_QUEUE": bare}
    assert reply(call(app, "GET", "/api/atlas/pandaqueue/query/", query="json&pandaqueue[]=OTHER")) == {}
    assert list(reply(call(app, "GET", "/request/pandaqueue/query/list/", query="json&panda_queue=DEV_QUEUE")))
    ddm = reply(call(app, "GET", "/api/atlas/ddmendpoint/query/", query="json&ddmendpoint[]=LOCAL_DISK"))
    disk = ddm["LOCAL_DISK"]
    assert disk["is_deterministic"] is True and disk["type"] == "DISK"
    assert disk["arprotocols"]["write_lan"][0]["endpoint"] == "file://"
    assert disk["arprotocols"]["read_lan"][0]["path"].endswith("storage")
    assert reply(call(app, "GET", "/cache/ddmendpoints.json")) == ddm
    assert reply(call(app, "GET", "/storagedata.json")) == ddm


def test_changing_information_at_run_time_and_reset(app):
    call(app, "POST", "/admin/queuedata", js={"queue": "DEV_QUEUE", "data": {"maxtime": 5}})
    assert reply(call(app, "GET", "/queuedata/DEV_QUEUE.json"))["maxtime"] == 5
    call(app, "POST", "/admin/queuedata", js={"queue": "NEW", "data": {"state": "ACTIVE"}, "merge": False})
    assert reply(call(app, "GET", "/queuedata/NEW.json")) == {"state": "ACTIVE", "nickname": "NEW"}
    call(app, "POST", "/admin/storagedata", js={"name": "OS", "data": {"type": "OS_ES"}})
    assert "OS" in reply(call(app, "GET", "/admin/storagedata"))
    assert call(app, "POST", "/admin/queuedata", js={"data": {}}).status == 400
    submit(app)
    add_rule(app, method="getJob", action="drop")
    call(app, "POST", "/admin/reset", js={"scope": "rules"})
    assert app.injector.rules() == [] and app.store.list_jobs()
    call(app, "POST", "/admin/reset", js={"scope": "data"})
    assert app.store.list_jobs() == [] and "NEW" in app.info.queues()
    call(app, "POST", "/admin/reset", js={})
    assert list(app.info.queues()) == ["DEV_QUEUE"] and app.info.queue("DEV_QUEUE")["maxtime"] != 5
    assert call(app, "POST", "/admin/reset", js={"scope": "everything"}).status == 400


def test_traces_and_sinks(app):
    assert call(app, "POST", "/traces/", js={"eventType": "get_sm", "filename": "f"}).status == 201
    call(app, "POST", "/traces", raw=json.dumps([{"a": 1}, {"b": 2}]).encode(),
         headers={"Content-Type": "application/x-www-form-urlencoded"})
    call(app, "POST", "/traces/", raw=b"not json at all")
    traces = reply(call(app, "GET", "/admin/traces"))
    assert traces[:3] == [{"eventType": "get_sm", "filename": "f"}, {"a": 1}, {"b": 2}]
    assert traces[3] == {"_raw": "not json at all"}
    assert reply(call(app, "POST", "/sink/bench", js={"t": 1.5}))["StatusCode"] == 0
    assert [d["body"] for d in reply(call(app, "GET", "/admin/sink/bench"))] == [{"t": 1.5}]


def test_submit_conflict_and_explicit_pandaid(app):
    assert submit(app, {"PandaID": "9000", "jobPars": "x"}) == [9000]
    assert call(app, "POST", "/admin/submit", js={"PandaID": 9000}).status == 409
    assert submit(app, {"PandaID": "9000"}, count=2) == [9001, 9002]
    assert call(app, "POST", "/admin/submit", raw=b"[1]").status == 400


def test_wait_endpoint_is_woken_by_updates(app):
    (pandaid,) = submit(app)
    assert call(app, "GET", f"/admin/wait/{pandaid}", query="timeout=0.05").status == 408
    assert call(app, "GET", "/admin/wait/555", query="timeout=0.01").status == 404
    timer = threading.Timer(0.1, lambda: panda(app, "updateJob", jobId=pandaid, state="failed"))
    timer.start()
    start = time.monotonic()
    out = call(app, "GET", f"/admin/wait/{pandaid}", query="timeout=10")
    timer.join()
    assert out.status == 200 and reply(out)["final_state"] == "failed"
    assert time.monotonic() - start < 5
    assert call(app, "GET", f"/admin/wait/{pandaid}", query="until=sent&timeout=1").status == 200


def test_handler_crash_is_500_and_recorded(app, monkeypatch):
    from pilot.devserver import panda as panda_module
    monkeypatch.setitem(panda_module.METHODS, "getJob", lambda a, r: 1 / 0)
    out = call(app, "POST", "/server/panda/getJob", form={"siteName": "Q"})
    assert out.status == 500 and "ZeroDivisionError" in reply(out)["error"]
    assert app.store.requests("getJob")[0]["http_status"] == 500


def test_bad_request_body_is_400(app):
    out = call(app, "POST", "/server/panda/updateJob", raw=b"\x1f\x8bxx")
    assert out.status == 400
    assert "_undecodable" in app.store.requests("updateJob")[0]["fields"]


def test_load_records_shapes(tmp_path):
    single = tmp_path / "q.json"
    single.write_text(json.dumps(default_queuedata("MYQ")))
    assert list(load_records(str(single), "nickname", "/s")) == ["MYQ"]
    keyed = tmp_path / "s.json"
    keyed.write_text(json.dumps({"DISK": {"name": "DISK", "arprotocols": {"w": [{"path": "@STORAGE_DIR@/x"}]}}}))
    storages = load_records(str(keyed), "name", str(tmp_path))
    assert storages["DISK"]["arprotocols"]["w"][0]["path"] == f"{tmp_path.resolve()}/x"
    bad = tmp_path / "b.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError):
        load_records(str(bad), "name", "/s")


def test_delay_always_processes_and_info_requests_are_recorded(app):
    submit(app)
    add_rule(app, method="getJob", action="delay", delay=0.01, process=False)
    assert panda(app, "getJob", siteName="Q")["StatusCode"] == 0
    call(app, "GET", "/api/atlas/pandaqueue/query/", query="json&pandaqueue[]=DEV_QUEUE")
    recorded = app.store.requests("cric_queues")
    assert recorded and recorded[0]["fields"]["pandaqueue[]"] == ["DEV_QUEUE"]
    assert app.store.requests("getJob")[0]["injected"] == "delay"
