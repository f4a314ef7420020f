"""pilot.util.harvester: mode detection, file places and names, the formats of the exchanged files."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest

from pilot.info.filespec import FileSpec
from pilot.util import harvester as hv
from pilot.util.config import config


def args(**kw):
    base = dict(harvester_workdir="", harvester_datadir="", harvester_eventstatusdump="",
                harvester_workerattributes="", harvester_submitmode="PULL", update_server=True, workdir="")
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.mark.parametrize("kw, env, expected", [
    ({}, {}, False),
    ({"harvester_workdir": "/ap"}, {}, False),  # a Harvester option without -z: server mode
    ({"harvester_workdir": "/ap", "update_server": False}, {}, True),
    ({"harvester_datadir": "/d", "update_server": False}, {}, True),
    ({"harvester_eventstatusdump": "x", "update_server": False}, {}, True),
    ({"harvester_workerattributes": "x", "update_server": False}, {}, True),
    ({"update_server": False}, {}, False),  # -z alone: aCT
    ({}, {"HARVESTER_ID": "h"}, False),  # PULL with a Harvester id: the pilot is on its own
    ({"harvester_submitmode": "PUSH"}, {"HARVESTER_WORKER_ID": "7"}, True),
    ({"harvester_submitmode": "push"}, {"HARVESTER_ID": "h"}, True),
])
def test_harvester_mode(kw, env, expected):
    assert hv.is_harvester_mode(args(**kw), environ=env) is expected


def test_file_names_follow_both_key_generations():
    names = hv.FileNames.from_config()
    assert names == hv.FileNames()  # the shipped defaults
    try:
        config.set("Harvester", "workerattributesfile", "p2_attributes.json")
        config.set("Harvester", "stageoutn_file", "p3_status.json")
        config.set("Harvester", "kill_worker_file", "kill_worker.json")
        names = hv.FileNames.from_config()
        assert names.worker_attributes == "p2_attributes.json" and names.event_status == "p3_status.json"
        assert names.kill_worker == "kill_worker.json"
    finally:
        config.clear_overrides()


def test_places_from_the_options(tmp_path):
    main = tmp_path / "launch" / "PanDA_Pilot2_1_2"
    dirs = hv.HarvesterDirs.from_args(args(workdir="launch", harvester_workdir=str(tmp_path / "ap")), str(main),
                                      environ={"HARVESTER_WORKDIR": "/hw"})
    assert dirs.launch_dir == str(tmp_path / "launch") and dirs.main_dir == str(main)
    assert dirs.access_point == str(tmp_path / "ap")
    paths = dirs.definition_paths(["11"])
    assert paths == [str(tmp_path / "pandaJobData.out"), str(tmp_path / "launch" / "pandaJobData.out"),
                     str(main / "pandaJobData.out"), str(tmp_path / "ap" / "HPCJobs.json"), "/hw/HPCJobs.json",
                     str(tmp_path / "ap" / "pandaJobData.out"), str(tmp_path / "ap" / "11" / "HPCJobs.json"),
                     str(tmp_path / "ap" / "11" / "pandaJobData.out")]
    # relative options are below the launch dir (the pilot has moved into its main dir by then)
    dirs = hv.HarvesterDirs.from_args(args(workdir="launch", harvester_workdir="ap", harvester_datadir="d"),
                                      str(main), environ={})
    assert dirs.access_point == str(tmp_path / "launch" / "ap") and dirs.datadir == str(tmp_path / "launch" / "d")
    # a data dir replaces the launch-dir places of pandaJobData.out
    dirs = hv.HarvesterDirs.from_args(args(harvester_datadir="/data"), str(main), environ={})
    assert dirs.access_point == str(main) and dirs.launch_dir == str(main)
    assert dirs.definition_paths()[:2] == ["/data/pandaJobData.out", str(main / "HPCJobs.json")]


def test_job_dir_is_the_pandaid_subdirectory_when_harvester_made_it(tmp_path):
    dirs = hv.HarvesterDirs(str(tmp_path), str(tmp_path), str(tmp_path))
    assert dirs.job_dir(5) == str(tmp_path)
    (tmp_path / "5").mkdir()
    assert dirs.job_file("worker_attributes.json", 5) == str(tmp_path / "5" / "worker_attributes.json")
    assert dirs.top("kill_worker") == str(tmp_path / "kill_worker")


def test_definitions_in_every_format():
    fields = {"PandaID": "12", "jobPars": "-c 'a b'", "inFiles": "x,y"}
    assert hv.parse_job_definitions(json.dumps({12: {k: v for k, v in fields.items() if k != "PandaID"}})) == [
        {"jobPars": "-c 'a b'", "inFiles": "x,y", "PandaID": "12"}]
    assert hv.parse_job_definitions(json.dumps(fields)) == [fields]
    assert hv.parse_job_definitions(urlencode(fields)) == [fields]
    assert hv.parse_job_definitions(json.dumps({"1": {"a": 1}, "2": {"a": 2}}))[1]["PandaID"] == "2"
    assert hv.parse_job_definitions("  \n") == []
    with pytest.raises(hv.IncompleteFile):
        hv.parse_job_definitions('{"12": {"jobPars": "half')


def test_read_job_definition_removes_the_file_but_keeps_a_half_written_one(tmp_path):
    path = tmp_path / "pandaJobData.out"
    path.write_text('{"12": {"jobPars": "x"')
    with pytest.raises(hv.IncompleteFile):
        hv.read_job_definition(str(path))
    assert path.exists()
    path.write_text(json.dumps({"12": {"jobPars": "x"}, "13": {"jobPars": "y"}}))
    assert hv.read_job_definition(str(path)) == {"jobPars": "x", "PandaID": "12"}
    assert not path.exists()


def test_worker_attributes_leave_out_the_file_lists():
    data = hv.worker_attributes({"jobId": "1", "state": "failed", "xml": "{}", "inputfiles": "a",
                                 "outputfiles": "b", "pilotErrorCode": 1201, "timestamp": "old"})
    assert data["jobStatus"] == "failed" and data["pilotErrorCode"] == 1201
    assert not {"xml", "inputfiles", "outputfiles"} & set(data) and data["timestamp"] != "old"


def _job(tmp_path):
    work = tmp_path / "PanDA_Pilot-1"
    work.mkdir()
    (work / "log.tgz").write_bytes(b"log")
    (work / "out.root").write_bytes(b"output")
    (work / "missing.root").write_bytes(b"")
    staged = tmp_path / "storage" / "out2.root"
    staged.parent.mkdir()
    staged.write_bytes(b"xx")
    log = FileSpec(lfn="log.tgz", filetype="log", guid="g0", filesize=3, checksum={"adler32": "aa"})
    out = FileSpec(lfn="out.root", filetype="output", guid="g1", filesize=6, checksum={"adler32": "bb"},
                   status="transferred")
    out2 = FileSpec(lfn="out2.root", filetype="output", guid="g2", filesize=2, checksum={"adler32": "cc"},
                    status="transferred", turl=f"file://{staged}")
    failed = FileSpec(lfn="missing.root", filetype="output", status="failed")
    return SimpleNamespace(jobid="1", workdir=str(work), logdata=[log], outdata=[out, out2, failed]), staged


def test_stageout_entries(tmp_path):
    job, staged = _job(tmp_path)
    entries = hv.stageout_entries(job)
    assert entries == [
        {"type": "log", "path": os.path.join(job.workdir, "log.tgz"), "guid": "g0", "fsize": 3, "chksum": "aa"},
        {"type": "output", "path": os.path.join(job.workdir, "out.root"), "guid": "g1", "fsize": 6, "chksum": "bb"},
        {"type": "output", "path": str(staged), "guid": "g2", "fsize": 2, "chksum": "cc"},
    ]
    os.unlink(staged)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "out2.root").write_bytes(b"xx")
    found = hv.stageout_entries(job, search_dirs=[str(tmp_path / "elsewhere")])
    assert found[-1]["path"] == str(tmp_path / "elsewhere" / "out2.root")
    assert len(hv.stageout_entries(job)) == 2  # a file that is nowhere is left out


def test_clean_job_report_and_event_updates():
    report = {"exitCode": 0, "executor": [{"name": "a", "logfileReport": {"x": 1}}, {"name": "b"}]}
    assert hv.clean_job_report(report)["executor"] == [{"name": "a", "logfileReport": {}}, {"name": "b"}]
    v1 = [{"zipFile": {"lfn": "z"}, "eventRanges": [{"eventRangeID": "1-2-3", "eventStatus": "finished"}]}]
    expected = [{"zipFile": {"lfn": "z"}, "eventRangeID": "1-2-3", "eventStatus": "finished"}]
    assert hv.flatten_event_updates(v1) == expected
    v0 = [{"eventRangeID": "r", "eventStatus": "failed", "errorCode": 1220}]
    assert hv.flatten_event_updates(v0) == v0


def test_atomic_writes_leave_no_temporary_file(tmp_path):
    path = tmp_path / "sub" / "worker_attributes.json"
    hv.write_json(str(path), {"a": 1})
    hv.write_marker(str(tmp_path / "kill_worker"))
    assert json.loads(path.read_text()) == {"a": 1} and (tmp_path / "kill_worker").read_bytes() == b""
    assert not list(tmp_path.glob("**/.tmp-*"))
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_merge_keeps_unread_entries_and_starts_over_after_harvester_consumed_them(tmp_path):
    path = str(tmp_path / "worker_updateevents.json")
    hv.merge_json_list_map(path, {"7": [{"eventRangeID": "a"}]})
    hv.merge_json_list_map(path, {"7": [{"eventRangeID": "b"}], "8": [{"eventRangeID": "c"}]})
    assert json.loads(open(path).read()) == {"7": [{"eventRangeID": "a"}, {"eventRangeID": "b"}],
                                             "8": [{"eventRangeID": "c"}]}
    hv.consume(path)  # Harvester takes it
    hv.merge_json_list_map(path, {"7": [{"eventRangeID": "d"}]})
    assert json.loads(open(path).read()) == {"7": [{"eventRangeID": "d"}]}
    assert os.path.exists(path + ".read") and not list(tmp_path.glob("*.pilot*"))


def test_read_pandaids(tmp_path):
    path = tmp_path / "worker_pandaids.json"
    assert hv.read_pandaids(str(path)) == []
    path.write_text("[1, 2")
    assert hv.read_pandaids(str(path)) == []
    path.write_text("[1, 2]")
    assert hv.read_pandaids(str(path)) == ["1", "2"]
