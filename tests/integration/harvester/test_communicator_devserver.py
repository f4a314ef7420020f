"""The PanDA backend against a real dev server over HTTP, in both protocol generations."""

from __future__ import annotations

import json
import urllib.request

import pytest

from pilot.api.communicators.panda import PandaServerCommunicator, Unsupported
from pilot.devserver.control import InProcessDevServer
from pilot.util.https import HttpClient


@pytest.fixture
def server(tmp_path):
    with InProcessDevServer(tmp_path / "srv") as srv:
        yield srv


@pytest.fixture
def http():
    client = HttpClient(retries=1, timeout=10, connect_timeout=10)
    yield client
    client.close()


GETJOB = {"siteName": "DEV_QUEUE", "computingElement": "DEV_QUEUE", "prodSourceLabel": "managed",
          "diskSpace": 5000, "workingGroup": "", "cpu": 2000, "mem": 4000, "node": "wn1",
          "allowOtherCountry": False}


def update(jobid, state, **extra):
    return {"jobId": str(jobid), "state": state, "timestamp": "2024-01-01T10:00:00+01:00", "siteName": "DEV_QUEUE",
            "node": "wn1", "attemptNr": 1, "pilotID": "x|PR|1", "startTime": "2024-01-01T10:00:00+01:00",
            "coreCount": 1, "jobMetrics": "coreCount=1", "cpuConversionFactor": 1.0, **extra}


@pytest.mark.parametrize("api", ["legacy", "rest"])
def test_one_job_through_each_protocol(server, http, api):
    pandaid = server.submit({"jobPars": "x", "transformation": "/bin/true"})
    comm = PandaServerCommunicator(server.url, http, api=api, fallback=False)
    job = comm.get_job(GETJOB)
    assert str(job["PandaID"]) == str(pandaid) and job["jobPars"] == "x"
    assert comm.get_job(GETJOB) is None  # no more jobs
    assert comm.update_job(update(pandaid, "starting"))["StatusCode"] == 0
    server.set_command(pandaid, "tobekilled")
    assert comm.update_job(update(pandaid, "running"))["command"] == "tobekilled"
    final = update(pandaid, "failed", pilotErrorCode=1144, pilotErrorDiag="killed", transExitCode=0,
                   exeErrorCode=0, exeErrorDiag="", pilotTiming="1|2|3|4|5", endTime="2024-01-01T10:05:00+01:00",
                   xml=json.dumps({"log.tgz": {"guid": "g", "fsize": 1, "adler32": "01", "surl": "file:///x"}}),
                   metaData='{"exitCode": 0}')
    assert comm.update_job(final, final=True)["StatusCode"] == 0
    record = server.wait_final(pandaid, timeout=10)
    assert record["state"] == "failed" and int(record["final_update"]["pilotErrorCode"]) == 1144
    assert record["final_update"]["xml"]["log.tgz"]["guid"] == "g"
    status = comm.get_status([pandaid, 999999])
    known, unknown = status["status"].split("+")
    assert known == record["state"] and unknown == ("not found" if api == "rest" else "notfound")
    assert status["attemptNr"].split("+")[1] == "0"
    names = [r["method"] for r in server.requests()]
    if api == "rest":
        assert set(names) == {"acquire_jobs", "update_job", "get_job_status"}
        assert all(r["http_status"] == 200 for r in server.requests())
    else:
        assert set(names) == {"getJob", "updateJob", "getStatus"}


@pytest.mark.parametrize("api", ["legacy", "rest"])
def test_event_ranges_through_each_protocol(server, http, api):
    pandaid = server.submit({"jobPars": "x", "eventService": "True"})
    ids = server.add_event_ranges(pandaid, [{"LFN": "EVNT.root", "GUID": "g", "scope": "mc", "startEvent": i,
                                             "lastEvent": i} for i in (1, 2, 3)])
    comm = PandaServerCommunicator(server.url, http, api=api, fallback=False)
    got = comm.get_event_ranges({"pandaID": pandaid, "jobsetID": "1", "taskID": "1", "nRanges": 2})
    assert [r["eventRangeID"] for r in got] == ids[:2]
    reply = comm.update_event_ranges([{"eventRangeID": ids[0], "eventStatus": "finished"},
                                      {"eventRangeID": ids[1], "eventStatus": "failed", "errorCode": 1220}],
                                     version=0)
    assert reply["StatusCode"] == 0
    states = {r["range_id"]: r["status"] for r in server.event_ranges(pandaid)}
    assert states == {ids[0]: "finished", ids[1]: "failed", ids[2]: "ready"}


def test_worker_status_in_both_protocols(server, http):
    for api in ("legacy", "rest"):
        comm = PandaServerCommunicator(server.url, http, api=api, fallback=False)
        assert comm.update_worker_status("12", "harvester-1", "started")["StatusCode"] == 0
    assert [r["method"] for r in server.requests()] == ["updateWorkerPilotStatus", "update_worker_status"]


@pytest.mark.parametrize("api, switched_off, refused", [("legacy", "legacy_api", "getJob"),
                                                        ("rest", "rest_api", "acquire_jobs")])
def test_fallback_between_generations(server, http, api, switched_off, refused):
    server.set_settings(**{switched_off: False})
    pandaid = server.submit({"jobPars": "x"})
    comm = PandaServerCommunicator(server.url, http, api=api)
    assert str(comm.get_job(GETJOB)["PandaID"]) == str(pandaid)
    assert comm.api != api
    comm.update_job(update(pandaid, "running"))
    assert [r["method"] for r in server.requests()].count(refused) == 1
    with pytest.raises(Unsupported):
        PandaServerCommunicator(server.url, http, api=api, fallback=False).get_job(GETJOB)


def test_dev_server_checks_rest_parameters_like_panda_server(server):
    """Names and JSON types are checked: the pilot's translation is what makes the calls above pass."""
    pandaid = server.submit({"jobPars": "x"})

    def post(path, body):
        req = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:  # noqa: S310 - local URL
            return json.loads(resp.read())

    reply = post("/api/v1/pilot/update_job", {"job_id": str(pandaid), "job_status": "running"})
    assert reply == {"success": False, "message": "Type error: 'job_id' must be of type int, got str.", "data": None}
    reply = post("/api/v1/pilot/update_job", {"job_id": pandaid, "job_status": "running", "jobMetrics": "x"})
    assert reply["message"] == "Argument error: got an unexpected keyword argument 'jobMetrics'"
    reply = post("/api/v1/pilot/update_job", {"job_id": pandaid, "job_status": "running",
                                              "cpu_conversion_factor": 1})
    assert reply["message"].startswith("Type error: 'cpu_conversion_factor' must be of type float")
    reply = post("/api/v1/pilot/acquire_jobs", {"site_name": "DEV_QUEUE"})
    assert reply["success"] and reply["data"]["PandaID"] == str(pandaid)
    assert post("/api/v1/pilot/acquire_jobs", {"site_name": "DEV_QUEUE"}) == {
        "success": False, "message": "No jobs in PanDA", "data": None}
    with urllib.request.urlopen(server.url + "/api/v1/pilot/acquire_jobs") as resp:  # noqa: S310
        assert json.loads(resp.read())["message"] == "expecting POST, received GET"
