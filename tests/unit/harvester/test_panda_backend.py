"""The PanDA backend: the REST translation, and the choice and fallback between the two protocols."""

from __future__ import annotations

import json

import pytest

from pilot.api.communicators import rest
from pilot.api.communicators.panda import PandaServerCommunicator, Unsupported
from pilot.common.exception import CommunicationFailure
from pilot.util.https import HttpError


def test_update_fields_become_typed_rest_parameters():
    fields = {"jobId": "7", "state": "finished", "timestamp": "2024-01-02T03:04:05+01:00", "siteName": "Q",
              "node": "n", "attemptNr": 2, "pilotID": "g|PR|1", "startTime": "2024-01-02T03:04:05+01:00",
              "coreCount": "8", "jobMetrics": "coreCount=8", "cpuConversionFactor": 1, "cpuConsumptionTime": 12,
              "cpuConsumptionUnit": "s+cpu", "maxRSS": 100, "avgPSS": 10.5, "totRBYTES": 7, "rateWCHAR": 2.0,
              "pilotErrorCode": 0, "pilotErrorDiag": "", "transExitCode": "0", "exeErrorCode": 0,
              "exeErrorDiag": "", "pilotTiming": "1|2|3|4|5", "endTime": 1704161045, "xml": '{"a": {}}',
              "metaData": '{"exitCode": 0}', "pilotLog": "log", "unknownThing": 1, "batchID": ""}
    params = rest.update_job_params(fields)
    assert params == {
        "job_id": 7, "job_status": "finished", "site_name": "Q", "node": "n", "attempt_nr": 2,
        "pilot_id": "g|PR|1", "start_time": "2024-01-02 02:04:05", "core_count": 8, "job_metrics": "coreCount=8",
        "cpu_conversion_factor": 1.0, "cpu_consumption_time": 12, "cpu_consumption_unit": "s+cpu",
        "max_rss": 100, "avg_pss": 10.5, "tot_rbytes": 7, "rate_wchar": 2, "pilot_error_code": 0,
        "pilot_error_diag": "", "trans_exit_code": 0, "exe_error_code": 0, "exe_error_diag": "",
        "pilot_timing": "1|2|3|4|5", "end_time": "2024-01-02 02:04:05", "job_output_report": '{"a": {}}',
        "meta_data": '{"exitCode": 0}', "pilot_log": "log", "batch_id": ""}
    assert isinstance(params["cpu_conversion_factor"], float) and isinstance(params["rate_wchar"], int)


def test_rest_time_is_utc():
    assert rest.rest_time("2024-06-01T12:00:00+02:00") == "2024-06-01 10:00:00"
    assert rest.rest_time(0) == "1970-01-01 00:00:00"
    # the pilot's own form is UTC already: kept as it is, whatever the local time zone
    assert rest.rest_time("2024-06-01 12:00:00") == "2024-06-01 12:00:00"


def test_job_request_parameters():
    fields = {"siteName": "S", "computingElement": "Q", "prodSourceLabel": "managed", "diskSpace": "1000",
              "workingGroup": "", "cpu": 2400, "mem": 2000.7, "node": "n", "allowOtherCountry": False,
              "taskID": "5", "harvester_id": "h", "worker_id": "12", "resourceType": "SCORE"}
    assert rest.acquire_jobs_params(fields) == {
        "site_name": "S", "computing_element": "Q", "prod_source_label": "managed", "disk_space": 1000,
        "memory": 2000, "node": "n", "task_id": 5, "harvester_id": "h", "worker_id": 12,
        "resource_type": "SCORE", "n_jobs": 1}
    assert rest.event_range_params({"pandaID": "7", "jobsetID": "3", "taskID": "1", "nRanges": 4}) == {
        "job_id": 7, "jobset_id": 3, "task_id": 1, "n_ranges": 4}


@pytest.mark.parametrize("reply, pandaid", [
    ({"success": True, "message": "", "data": {"StatusCode": 0, "PandaID": 5}}, 5),
    ({"success": True, "message": "", "data": {"StatusCode": 0, "jobs": [{"PandaID": 6, "StatusCode": 0}]}}, 6),
    ({"success": True, "message": "", "data": {"StatusCode": 0, "jobs": []}}, None),
    ({"success": False, "message": "No jobs in PanDA", "data": None}, None),
    ({"success": True, "message": "", "data": {"StatusCode": 20, "PandaID": 5}}, None),
])
def test_job_from_reply(reply, pandaid):
    job = rest.job_from_reply(reply)
    assert (job or {}).get("PandaID") == pandaid


def test_reply_shapes():
    assert rest.update_reply({"success": True, "message": "", "data": {"StatusCode": 0, "command": "tobekilled"}}) \
        == {"StatusCode": 0, "command": "tobekilled"}
    refused = rest.update_reply({"success": False, "message": "Type error", "data": None})
    assert refused == {"StatusCode": 30, "errorDialog": "Type error", "command": None}
    assert rest.status_reply({"success": True, "data": [{"job_id": 1, "status": "running", "attempt_number": 2},
                                                        {"job_id": 2, "status": "not found", "attempt_number": 0}]}) \
        == {"StatusCode": 0, "status": "running+not found", "attemptNr": "2+0"}
    assert rest.is_envelope({"success": False, "message": "x", "data": None})
    assert not rest.is_envelope({"StatusCode": 0})


class FakeHttp:
    """Answers per URL path; raises for paths the 'server' does not know."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def _answer(self, url, data):
        path = url.split("//", 1)[1].split("/", 1)[1].split("?")[0]
        self.calls.append((path, data))
        answer = self.answers.get(path, HttpError("HTTP 404", 404))
        if isinstance(answer, Exception):
            raise answer
        return answer(data) if callable(answer) else answer

    def post_form(self, url, data, timeout=None, retries=None, resend=True):
        return self._answer(url, data)

    def post_json(self, url, obj, timeout=None, retries=None, compress=False, resend=True):
        return self._answer(url, obj)

    def request(self, url, body, method="POST", headers=None, timeout=None, retries=None):
        return json.dumps(self._answer(url, url.split("?", 1)[1])).encode()


REST_JOB = {"success": True, "message": "", "data": {"StatusCode": 0, "jobs": [{"PandaID": "9", "StatusCode": 0}]}}
REST_UPDATE = {"success": True, "message": "", "data": {"StatusCode": 0, "command": "debug"}}


def test_legacy_first_falls_back_to_rest_once_and_stays():
    http = FakeHttp({"server/panda/getJob": HttpError("forbidden", 403),
                     "api/v1/pilot/acquire_jobs": REST_JOB, "api/v1/pilot/update_job": REST_UPDATE})
    comm = PandaServerCommunicator("https://s:1", http)
    assert comm.get_job({"siteName": "Q"})["PandaID"] == "9"
    assert comm.api == "rest"
    assert comm.update_job({"jobId": "9", "state": "running"})["command"] == "debug"
    assert [c[0] for c in http.calls] == ["server/panda/getJob", "api/v1/pilot/acquire_jobs",
                                          "api/v1/pilot/update_job"]
    assert http.calls[-1][1] == {"job_id": 9, "job_status": "running"}


def test_rest_first_falls_back_to_legacy_on_404_and_on_a_reply_that_is_not_rest():
    http = FakeHttp({"server/panda/getJob": {"StatusCode": 0, "PandaID": "3"},
                     "server/panda/updateJob": {"StatusCode": 0, "command": "NULL"}})
    comm = PandaServerCommunicator("https://s:1", http, api="rest")
    assert comm.get_job({})["PandaID"] == "3" and comm.api == "legacy"
    http = FakeHttp({"api/v1/pilot/update_job": {"StatusCode": 0},  # an older server: no envelope
                     "server/panda/updateJob": {"StatusCode": 0, "command": "NULL"}})
    comm = PandaServerCommunicator("https://s:1", http, api="rest")
    assert comm.update_job({"jobId": "3", "state": "running"}) == {"StatusCode": 0, "command": "NULL"}
    assert comm.api == "legacy"


def test_plain_text_forbidden_reply_is_a_refusal():
    http = FakeHttp({"server/panda/getJob": CommunicationFailure("reply is not JSON: 'method getJob is forbidden'"),
                     "api/v1/pilot/acquire_jobs": REST_JOB})
    assert PandaServerCommunicator("https://s:1", http).get_job({})["PandaID"] == "9"


def test_no_fallback_when_switched_off_and_no_fallback_on_other_failures():
    http = FakeHttp({})
    with pytest.raises(Unsupported):
        PandaServerCommunicator("https://s:1", http, fallback=False).get_job({})
    http = FakeHttp({"server/panda/updateJob": HttpError("busy", 503)})
    comm = PandaServerCommunicator("https://s:1", http)
    with pytest.raises(CommunicationFailure):
        comm.update_job({"jobId": "1", "state": "running"})
    assert [c[0] for c in http.calls] == ["server/panda/updateJob"] and comm.api == "legacy"


def test_rest_event_ranges_status_and_worker_status():
    ranges = [{"eventRangeID": "1-2-3-4-5", "startEvent": 1, "lastEvent": 1}]
    http = FakeHttp({
        "api/v1/event/acquire_event_ranges": {"success": True, "message": "", "data": ranges},
        "api/v1/event/update_event_ranges": {"success": True, "message": "", "data": {"Returns": [True],
                                                                                      "Commands": {}}},
        "api/v1/pilot/get_job_status": {"success": True, "data": [{"job_id": 4, "status": "holding",
                                                                   "attempt_number": 1}]},
        "api/v1/pilot/update_worker_status": {"success": True, "message": "", "data": None},
    })
    comm = PandaServerCommunicator("https://s:1", http, api="rest", fallback=False)
    assert comm.get_event_ranges({"pandaID": "2", "jobsetID": "1", "taskID": "1", "nRanges": 1}) == ranges
    assert http.calls[-1][1] == {"job_id": 2, "jobset_id": 1, "task_id": 1, "n_ranges": 1}
    assert comm.update_event_ranges([{"eventRangeID": "1-2-3-4-5", "eventStatus": "finished"}])["Returns"] == [True]
    assert json.loads(http.calls[-1][1]["event_ranges"])[0]["eventStatus"] == "finished"
    assert http.calls[-1][1]["version"] == 1
    assert comm.get_status([4]) == {"StatusCode": 0, "status": "holding", "attemptNr": "1"}
    assert "job_ids=%5B4%5D" in http.calls[-1][1]
    assert comm.update_worker_status("12", "h", "started")["StatusCode"] == 0
    assert http.calls[-1][1] == {"worker_id": "12", "harvester_id": "h", "status": "started"}


def test_a_preplaced_definition_is_used_before_the_server():
    class Files:
        def take(self):
            return {"PandaID": "1"}

    http = FakeHttp({})
    assert PandaServerCommunicator("https://s:1", http, job_files=Files()).get_job({}) == {"PandaID": "1"}
    assert http.calls == []


def test_unknown_api_name():
    with pytest.raises(ValueError):
        PandaServerCommunicator("https://s:1", FakeHttp({}), api="grpc")
