"""The Harvester and aCT communicator backends at the API level, with Harvester's side played by the test."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest

from pilot.api.communicator import create_communicator
from pilot.api.communicators.act import ActCommunicator
from pilot.api.communicators.harvester import HarvesterCommunicator
from pilot.api.communicators.jobfiles import JobFiles
from pilot.api.communicators.panda import PandaServerCommunicator
from pilot.common.exception import CommunicationFailure
from pilot.info.filespec import FileSpec
from pilot.util import harvester as hv
from tests.harvester_side import HarvesterSide, wait_until


class FakeServer:
    """A PanDA backend that records calls."""

    def __init__(self, job=None):
        self.job = job
        self.calls = []

    def get_job(self, fields):
        self.calls.append(("get_job", fields))
        job, self.job = self.job, None
        return job

    def update_job(self, fields, final=False):
        self.calls.append(("update_job", fields))
        return {"StatusCode": 0, "command": "debug"}


def backend(ap, mode="PUSH", server=None, jobs=None, **kw):
    dirs = hv.HarvesterDirs(str(ap), str(ap / "main"), str(ap))
    kw.setdefault("events_timeout", 10)
    return HarvesterCommunicator(dirs, mode=mode, server=server, job_lookup=(jobs or {}).get,
                                 poll_interval=0.01, **kw)


def test_push_reads_the_fed_job_and_asks_for_the_next_one(tmp_path):
    side = HarvesterSide(tmp_path)
    server = FakeServer({"PandaID": "99"})
    comm = backend(tmp_path, server=server)
    side.feed_jobs([{"PandaID": 11, "jobPars": "x"}])
    assert str(comm.get_job({})["PandaID"]) == "11"
    assert not (tmp_path / "pandaJobData.out").exists()
    assert comm.get_job({}) is None and side.job_requested() == 1
    before = (tmp_path / "worker_requestjob.json").stat().st_mtime_ns
    assert comm.get_job({}) is None
    assert (tmp_path / "worker_requestjob.json").stat().st_mtime_ns == before  # asked once, not rewritten
    side.feed_jobs([{"PandaID": 12, "jobPars": "y"}], fmt="cgi")
    assert comm.get_job({}) == {"PandaID": "12", "jobPars": "y"}
    assert server.calls == []  # PUSH never asks the server
    assert comm.job_poll_interval == 0.01 and comm.max_job_requests == 60


def test_a_request_is_withdrawn_when_a_job_arrives_without_harvester_removing_it(tmp_path):
    comm = backend(tmp_path)
    assert comm.get_job({}) is None and (tmp_path / "worker_requestjob.json").exists()
    (tmp_path / "pandaJobData.out").write_text(json.dumps({"5": {"jobPars": "x"}}))
    assert comm.get_job({})["PandaID"] == "5"
    assert not (tmp_path / "worker_requestjob.json").exists()


def test_half_written_job_file_is_read_at_the_next_poll(tmp_path):
    comm = backend(tmp_path)
    path = tmp_path / "pandaJobData.out"
    path.write_text('{"5": {"jobPars": "x"')
    assert comm.get_job({}) is None and path.exists()
    path.write_text('{"5": {"jobPars": "x"}}')
    assert comm.get_job({})["PandaID"] == "5"


def test_pull_asks_the_server_and_lists_the_pandaid_for_harvester(tmp_path):
    side = HarvesterSide(tmp_path)
    server = FakeServer({"PandaID": "42", "jobPars": "x"})
    comm = backend(tmp_path, mode="PULL", server=server)
    assert comm.get_job({"siteName": "Q"})["PandaID"] == "42"
    assert server.calls == [("get_job", {"siteName": "Q"})]
    assert side.get_panda_ids() == [42] and not side.job_requested()
    assert comm.get_job({}) is None and side.job_requested() == 1  # nothing anywhere: ask Harvester too


def make_job(tmp_path, jobid="7"):
    work = tmp_path / "main" / f"PanDA_Pilot-{jobid}"
    work.mkdir(parents=True)
    (work / "log.tgz").write_bytes(b"log")
    (work / "out.root").write_bytes(b"out")
    (work / "jobReport.json").write_text(json.dumps({"executor": [{"logfileReport": {"a": 1}}], "exitCode": 0}))
    return SimpleNamespace(
        jobid=jobid, workdir=str(work),
        logdata=[FileSpec(lfn="log.tgz", filetype="log", guid="g", filesize=3, checksum={"adler32": "1"})],
        outdata=[FileSpec(lfn="out.root", filetype="output", guid="h", filesize=3, checksum={"adler32": "2"},
                          status="transferred")])


def test_updates_write_attributes_and_the_final_one_the_output_list_and_report(tmp_path):
    side = HarvesterSide(tmp_path)
    job = make_job(tmp_path)
    comm = backend(tmp_path, jobs={"7": job})
    assert comm.update_job({"jobId": "7", "state": "running", "xml": "{}"}) == {"StatusCode": 0, "command": None}
    assert side.get_work_attributes(7)["jobStatus"] == "running"
    assert not (tmp_path / "event_status.dump.json").exists() and side.is_alive(1)
    comm.update_job({"jobId": "7", "state": "finished", "pilotErrorCode": 0}, final=True)
    attrs = side.get_work_attributes(7)
    assert attrs["jobStatus"] == "finished" and attrs["metaData"] == {"executor": [{"logfileReport": {}}],
                                                                      "exitCode": 0}
    files = side.get_files_to_stage_out(7)[7]
    assert files["log.tgz"][0]["type"] == "log" and files["out.root"][0] == {
        "type": "output", "path": f"{job.workdir}/out.root", "guid": "h", "fsize": 3, "chksum": "2"}


def test_final_update_without_a_report_removes_an_earlier_jobs_copy(tmp_path):
    job = make_job(tmp_path, "8")
    (tmp_path / "main" / "PanDA_Pilot-8" / "jobReport.json").unlink()
    (tmp_path / "jobReport.json").write_text("{}")
    backend(tmp_path, jobs={"8": job}).update_job({"jobId": "8", "state": "failed"}, final=True)
    assert not (tmp_path / "jobReport.json").exists()


def test_multi_job_worker_files_go_to_the_pandaid_subdirectory(tmp_path):
    side = HarvesterSide(tmp_path, multi_jobs=True)
    side.feed_jobs([{"PandaID": 7, "jobPars": "a"}, {"PandaID": 9, "jobPars": "b"}])
    comm = backend(tmp_path, jobs={"7": make_job(tmp_path, "7")})
    assert [str(comm.get_job({})["PandaID"]), str(comm.get_job({})["PandaID"])] == ["7", "9"]
    comm.update_job({"jobId": "7", "state": "finished"}, final=True)
    assert (tmp_path / "7" / "worker_attributes.json").exists() and (tmp_path / "7" / "jobReport.json").exists()
    assert set(side.get_files_to_stage_out(7)[7]) == {"log.tgz", "out.root"}
    assert not (tmp_path / "worker_attributes.json").exists()


def test_updates_go_to_the_server_without_z(tmp_path):
    server = FakeServer()
    comm = backend(tmp_path, server=server, file_updates=False)
    assert comm.update_job({"jobId": "1", "state": "running"})["command"] == "debug"
    assert server.calls == [("update_job", {"jobId": "1", "state": "running"})]
    assert not (tmp_path / "worker_attributes.json").exists()


def test_unwritable_access_point_is_a_communication_failure(tmp_path):
    (tmp_path / "ap").write_text("not a directory")
    comm = backend(tmp_path / "ap")
    with pytest.raises(CommunicationFailure):
        comm.update_job({"jobId": "1", "state": "running"})


def test_event_ranges_requested_and_fed_through_files(tmp_path):
    side = HarvesterSide(tmp_path)
    comm = backend(tmp_path)
    (tmp_path / "JobsEventRanges.json").write_text(json.dumps({"7": [{"eventRangeID": "old"}]}))  # stale
    ranges = [{"eventRangeID": "1-7-1-1-1", "LFN": "EVNT.pool.root", "GUID": "g", "scope": "mc",
               "startEvent": 1, "lastEvent": 10}]
    got = {}

    def harvester():
        request = wait_until(side.events_requested, timeout=10)
        got["request"] = request
        side.feed_events({7: ranges})

    thread = threading.Thread(target=harvester)
    thread.start()
    result = comm.get_event_ranges({"pandaID": "7", "jobsetID": "3", "taskID": "1", "nRanges": 5})
    thread.join()
    assert result == ranges
    assert got["request"] == {"7": {"pandaID": 7, "jobsetID": "3", "taskID": "1", "nRanges": 5}}
    assert not (tmp_path / "JobsEventRanges.json").exists() and (tmp_path / "JobsEventRanges.json.read").exists()
    assert not (tmp_path / "worker_requestevents.json").exists()


def test_event_ranges_time_out_and_stop(tmp_path):
    with pytest.raises(CommunicationFailure, match="no event ranges"):
        backend(tmp_path, events_timeout=0.05).get_event_ranges({"pandaID": "7", "nRanges": 1})
    stop = threading.Event()
    stop.set()
    with pytest.raises(CommunicationFailure, match="stopping"):
        backend(tmp_path, stop_event=stop).get_event_ranges({"pandaID": "7", "nRanges": 1})


def test_event_updates_are_added_per_job_until_harvester_takes_them(tmp_path):
    side = HarvesterSide(tmp_path)
    comm = backend(tmp_path)
    comm.range_owner["r1"] = "7"
    comm.update_event_ranges([{"eventRangeID": "r1", "eventStatus": "finished"}], version=0)
    comm.update_event_ranges([{"zipFile": {"lfn": "z"}, "eventRanges": [
        {"eventRangeID": "1-8-2-1-1", "eventStatus": "finished"}]}], version=1)
    comm.update_event_ranges([{"eventRangeID": "x", "eventStatus": "failed"}], pandaid="7")
    assert side.events_to_update(7) == {7: [{"eventRangeID": "r1", "eventStatus": "finished"},
                                            {"eventRangeID": "x", "eventStatus": "failed"}],
                                        8: [{"zipFile": {"lfn": "z"}, "eventRangeID": "1-8-2-1-1",
                                             "eventStatus": "finished"}]}
    comm.update_event_ranges([{"eventRangeID": "r1", "eventStatus": "failed"}])
    assert json.loads((tmp_path / "worker_updateevents.json").read_text()) == {
        "7": [{"eventRangeID": "r1", "eventStatus": "failed"}]}


def test_close_leaves_the_kill_marker_and_checks_refresh_the_heartbeat(tmp_path):
    comm = backend(tmp_path, heartbeat_interval=5)
    ((name, period, check),) = comm.checks()
    assert name == "worker_heartbeat" and period == 5
    check(None)
    assert HarvesterSide(tmp_path).is_alive(1)
    comm.close()
    assert (tmp_path / "kill_worker").exists()


def test_act_backend(tmp_path):
    dirs = hv.HarvesterDirs(str(tmp_path), str(tmp_path), str(tmp_path))
    comm = ActCommunicator(str(tmp_path), JobFiles(dirs))
    assert comm.get_job({}) is None
    (tmp_path / "pandaJobData.out").write_text(urlencode({"PandaID": "3", "jobPars": "x y"}))
    assert comm.get_job({}) == {"PandaID": "3", "jobPars": "x y"}
    comm.update_job({"jobId": "3", "state": "running"})
    comm.update_job({"jobId": "3", "state": "finished", "xml": "{}"}, final=True)
    assert json.loads((tmp_path / "heartbeat.json").read_text()) == {"jobId": "3", "state": "finished", "xml": "{}"}
    with pytest.raises(CommunicationFailure):
        comm.get_event_ranges({})


def options(**kw):
    base = dict(harvester_workdir="", harvester_datadir="", harvester_eventstatusdump="",
                harvester_workerattributes="", harvester_submitmode="PULL", update_server=True, workdir="",
                url="https://server", port=25443)
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.mark.parametrize("kw, env, kind, mode", [
    ({}, {}, PandaServerCommunicator, None),
    ({"update_server": False}, {}, ActCommunicator, None),
    ({"update_server": False, "harvester_workdir": "AP"}, {}, HarvesterCommunicator, "PULL"),
    ({"update_server": False, "harvester_datadir": "D", "harvester_submitmode": "PUSH"}, {},
     HarvesterCommunicator, "PUSH"),
    ({"harvester_submitmode": "PUSH"}, {"HARVESTER_ID": "h"}, HarvesterCommunicator, "PUSH"),
])
def test_backend_selection(tmp_path, kw, env, kind, mode):
    if kw.get("harvester_workdir"):
        kw["harvester_workdir"] = str(tmp_path / "ap")
    comm = create_communicator(options(**kw), str(tmp_path), http=None, environ=env)
    assert type(comm) is kind
    if mode:
        assert comm.mode == mode and comm.file_updates == (not options(**kw).update_server)
        assert isinstance(comm.server, PandaServerCommunicator) and comm.server.job_files is None
    if kind is PandaServerCommunicator:
        assert comm.base_url == "https://server:25443" and comm.api == "legacy" and comm.job_files is not None
