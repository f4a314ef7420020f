"""The communication manager: requests served in order through a communicator (fake backend)."""

import json
import threading

import pytest

from pilot.common.exception import CommunicationFailure, SetupFailure
from pilot.eventservice.communicationmanager import CommunicationManager, CommunicationRequest, CommunicationResponse
from pilot.eventservice.communicationmanager.communicationmanager import normalise_update
from pilot.info.jobdata import JobData


class FakeCommunicator:
    name = "fake"

    def __init__(self, ranges=(), fail=None):
        self.ranges = list(ranges)
        self.fail = fail
        self.asked = []
        self.updates = []
        self.jobs = []
        self.threads = set()

    def get_event_ranges(self, fields):
        self.threads.add(threading.current_thread().name)
        if self.fail:
            raise self.fail
        self.asked.append(fields)
        out, self.ranges = self.ranges[:fields["nRanges"]], self.ranges[fields["nRanges"]:]
        return out

    def update_event_ranges(self, ranges, version=1):
        self.updates.append((version, ranges))
        return {"StatusCode": 0}

    def get_job(self, fields):
        self.served = getattr(self, "served", 0) + 1
        return {"PandaID": "1", **fields} if self.served == 1 else None

    def update_job(self, fields, final=False):
        self.jobs.append((fields, final))
        return {"command": "NULL"}


@pytest.fixture
def manager():
    made = []

    def make(communicator):
        mgr = CommunicationManager(communicator=communicator)
        mgr.start()
        made.append(mgr)
        return mgr

    yield make
    for mgr in made:
        mgr.stop()
        mgr.join(5)


def test_event_ranges_with_the_job_fields(manager):
    comm = FakeCommunicator([{"eventRangeID": str(i)} for i in range(5)])
    mgr = manager(comm)
    job = JobData.from_definition({"PandaID": "42", "jobsetID": "7", "taskID": "3"})
    got = mgr.get_event_ranges(num_event_ranges=2, job=job)
    assert [r["eventRangeID"] for r in got] == ["0", "1"]
    assert comm.asked == [{"pandaID": "42", "jobsetID": "7", "taskID": "3", "nRanges": 2}]
    rest = mgr.get_event_ranges(10, job={"PandaID": 42, "jobsetID": 7, "taskID": 3})
    assert [r["eventRangeID"] for r in rest] == ["2", "3", "4"] and comm.asked[-1]["nRanges"] == 10
    assert comm.threads == {"CommunicationManager"}


def test_event_ranges_need_a_job(manager):
    mgr = manager(FakeCommunicator())
    with pytest.raises(CommunicationFailure):
        mgr.get_event_ranges(1, job=None)


def test_failure_reaches_the_caller(manager):
    mgr = manager(FakeCommunicator(fail=CommunicationFailure("server down")))
    with pytest.raises(CommunicationFailure, match="server down"):
        mgr.get_event_ranges(1, job={"PandaID": 1, "jobsetID": 1, "taskID": 1})


def test_backend_bug_becomes_unknown_exception(manager):
    mgr = manager(FakeCommunicator(fail=KeyError("boom")))
    with pytest.raises(Exception) as info:
        mgr.get_event_ranges(1, job={"PandaID": 1, "jobsetID": 1, "taskID": 1})
    assert "boom" in str(info.value)
    assert mgr.is_alive()


def test_update_events_forms(manager):
    comm = FakeCommunicator()
    mgr = manager(comm)
    v1 = [{"zipFile": {"lfn": "z"}, "eventRanges": [{"eventRangeID": "a", "eventStatus": "finished"}]}]
    mgr.update_events({"version": 1, "eventRanges": json.dumps(v1)})
    mgr.update_events({"version": 0, "eventRanges": [{"eventRangeID": "b", "eventStatus": "failed"}]})
    assert comm.updates == [(1, v1), (0, [{"eventRangeID": "b", "eventStatus": "failed"}])]


def test_normalise_update_guesses_the_version_of_a_bare_list():
    assert normalise_update([{"eventRangeID": "a"}]) == ([{"eventRangeID": "a"}], 0)
    assert normalise_update([{"esOutput": {}, "eventRanges": []}])[1] == 1
    assert normalise_update({"version": "1", "eventRanges": ""}) == ([], 1)
    with pytest.raises(SetupFailure):
        normalise_update("nonsense")


def test_post_hook_gets_the_response(manager):
    comm = FakeCommunicator()
    mgr = manager(comm)
    done = threading.Event()
    seen = []

    def hook(response):
        seen.append(response)
        done.set()

    assert mgr.update_events({"version": 0, "eventRanges": []}, post_hook=hook) is None
    assert done.wait(5)
    assert seen[0].status == 0 and seen[0].content == {"StatusCode": 0}


def test_jobs_through_the_manager(manager):
    comm = FakeCommunicator()
    mgr = manager(comm)
    assert mgr.get_jobs(njobs=2, args={"siteName": "S"}) == [{"PandaID": "1", "siteName": "S", "getProxyKey": "False"}]
    assert mgr.update_jobs([{"jobId": "1", "state": "finished"}]) == [{"command": "NULL"}]
    assert comm.jobs == [({"jobId": "1", "state": "finished"}, True)]


def test_stopped_manager_answers_nothing(manager):
    mgr = manager(FakeCommunicator())
    mgr.stop()
    mgr.join(5)
    assert mgr.get_event_ranges(1, job={"PandaID": 1, "jobsetID": 1, "taskID": 1}) is None


def test_not_started_manager_refuses():
    mgr = CommunicationManager(communicator=FakeCommunicator())
    with pytest.raises(CommunicationFailure):
        mgr.update_events({"version": 0, "eventRanges": []})


def test_request_and_response_objects():
    req = CommunicationRequest({"request_type": CommunicationRequest.RequestType.RequestEvents})
    assert req.num_event_ranges == 1 and req.post_hook is None and req.response is None and not req.abort
    assert not req.wait(0)
    req.set_response(CommunicationResponse({"status": 0, "content": [1]}))
    assert req.wait(0) and req.response.content == [1]
    assert json.loads(str(req))["request_type"] == "request_events"
    resp = CommunicationResponse('{"status": 0}')
    assert resp.status == 0 and resp.content is None and resp.exception is None
    with pytest.raises(SetupFailure):
        CommunicationRequest({"request_type": "nope"})
