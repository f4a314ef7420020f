"""Event ranges through the communication manager and the pilot's server client, against a dev server.

Both server protocols (legacy ``getEventRanges``/``updateEventRanges`` and the REST
``acquire_event_ranges``/``update_event_ranges``) are spoken over real HTTP.
"""

import pytest

from pilot.api.communicators.panda import PandaServerCommunicator
from pilot.devserver.control import InProcessDevServer
from pilot.eventservice.communicationmanager import CommunicationManager
from pilot.eventservice.eventrange import failed_update, zip_update
from pilot.util.https import HttpClient


@pytest.fixture
def server(tmp_path):
    with InProcessDevServer(tmp_path / "srv") as srv:
        yield srv


@pytest.fixture(params=["legacy", "rest"])
def manager(request, server):
    http = HttpClient(retries=1, timeout=10, connect_timeout=5)
    comm = PandaServerCommunicator(server.url, http, api=request.param, fallback=False)
    mgr = CommunicationManager(communicator=comm)
    mgr.start()
    yield mgr
    mgr.stop()
    mgr.join(5)
    http.close()


def ranges(n, tag):
    return [{"eventRangeID": f"{tag}-{i}", "LFN": "EVNT.root", "GUID": "G", "scope": "mc", "startEvent": i,
             "lastEvent": i} for i in range(n)]


def test_ranges_once_states_once(server, manager):
    pandaid = server.submit({"jobPars": "x", "eventService": "True", "jobsetID": "3", "_eventRanges": ranges(5, "a")})
    job = {"PandaID": pandaid, "jobsetID": "3", "taskID": "1"}
    got = manager.get_event_ranges(3, job=job) + manager.get_event_ranges(3, job=job)
    assert [r["eventRangeID"] for r in got] == [f"a-{i}" for i in range(5)]
    assert got[0] == ranges(1, "a")[0]  # forwarded unchanged
    assert manager.get_event_ranges(3, job=job) == []
    manager.update_events({"version": 1, "eventRanges": zip_update(["a-0", "a-1"], "EventService_premerge_a-0.tar",
                                                                   10, {"adler32": "0000000a"}, 1)})
    manager.update_events({"version": 0, "eventRanges": failed_update([{"id": "a-2", "status": "fatal"}])})
    states = {r["range_id"]: (r["status"], r["n_updates"]) for r in server.event_ranges(pandaid)}
    assert states == {"a-0": ("finished", 1), "a-1": ("finished", 1), "a-2": ("fatal", 1),
                      "a-3": ("assigned", 0), "a-4": ("assigned", 0)}
    zipped = server.event_ranges(pandaid)[0]["last_update"]["zipFile"]
    assert zipped["lfn"] == "EventService_premerge_a-0.tar" and zipped["pathConvention"] == 1000


def test_released_ranges_go_to_another_job_of_the_jobset(server, manager):
    first = server.submit({"jobPars": "x", "eventService": "True", "jobsetID": "9", "_eventRanges": ranges(4, "b")})
    second = server.submit({"jobPars": "x", "eventService": "True", "jobsetID": "9"})
    taken = manager.get_event_ranges(3, job={"PandaID": first, "jobsetID": "9", "taskID": "1"})
    assert len(taken) == 3
    manager.update_events({"version": 1, "eventRanges": zip_update(["b-0"], "z.tar", 1, {}, 1)})
    # the first job fails (e.g. its pilot got SIGTERM): its unreported ranges return to the pool
    manager.update_jobs([{"jobId": str(first), "state": "failed"}])
    again = manager.get_event_ranges(10, job={"PandaID": second, "jobsetID": "9", "taskID": "1"})
    assert [r["eventRangeID"] for r in again] == ["b-1", "b-2", "b-3"]
