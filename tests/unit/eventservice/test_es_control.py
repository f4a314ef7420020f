"""The payload-control side: executor choice, merge-job preparation, dev server range pool."""

import io
import tarfile
from types import SimpleNamespace

import pytest

from pilot.control.payloads.eventservice import EventServiceExecutor
from pilot.control.payloads.eventservicemerge import (EventServiceMergeExecutor, job_option_for,
                                                      process_writetofile, untar_inputs)
from pilot.control.payloads.generic import PayloadExecutor
from pilot.control.payloads.selection import executor_for, executor_type
from pilot.devserver.store import Store
from pilot.info.jobdata import JobData


def ctx(es_type=""):
    return SimpleNamespace(args=SimpleNamespace(executor_type=es_type, queue="Q"), user=None, infosys=None,
                           communicator=None, http=None)


@pytest.mark.parametrize("fields, cls", [
    ({"eventService": "True"}, EventServiceExecutor),
    ({"eventServiceMerge": "true"}, EventServiceMergeExecutor),
    ({}, PayloadExecutor),
])
def test_executor_for(fields, cls):
    job = JobData.from_definition({"PandaID": "5", **fields})
    assert type(executor_for(ctx(), job)) is cls


def test_executor_type_from_the_option_else_the_config():
    assert executor_type(ctx("raythena")) == "raythena"
    assert executor_type(ctx("")) == "generic"
    job = JobData.from_definition({"PandaID": "5", "eventService": "True"})
    assert executor_for(ctx("mpi"), job).es_type == "mpi"


def merge_job(tmp_path, writetofile, pars):
    job = JobData.from_definition({"PandaID": "9", "eventServiceMerge": "True", "writeToFile": writetofile,
                                   "jobPars": pars, "inFiles": "zip://EventService_premerge_1.tar,other.root"})
    job.workdir = str(tmp_path)
    return job


def test_process_writetofile(tmp_path):
    job = merge_job(tmp_path, "inputFor_a:x.1,x.2^inputFor_b:y.1",
                    "--inputHitsFile=@inputFor_a --inputOther=@inputFor_b --autoConfiguration=everything --out=o")
    lists = process_writetofile(job)
    assert lists == {"inputFor_a": ["x.1", "x.2"], "inputFor_b": ["y.1"]}
    assert (tmp_path / "inputFor_a.txt").read_text() == "--inputHitsFile\nx.1\nx.2\n"
    assert (tmp_path / "inputFor_b.txt").read_text() == "--inputOther\ny.1\n"
    assert job.jobparams == "@inputFor_a.txt @inputFor_b.txt  --out=o"


def test_job_option_for():
    assert job_option_for("--in=@inputFor_a --x", "inputFor_a") == "--in"
    assert job_option_for("--in=@inputFor_ab", "inputFor_a") == ""


def test_untar_inputs_only_safe_members(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("out.1", b"one"), ("../escape", b"bad"), ("/abs", b"bad")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tmp_path / "EventService_premerge_1.tar").write_bytes(buf.getvalue())
    job = merge_job(tmp_path, "", "")
    assert job.indata[0].is_tar and job.indata[0].lfn == "EventService_premerge_1.tar"
    assert untar_inputs(job) == ["out.1"]
    assert (tmp_path / "out.1").read_bytes() == b"one"
    assert not (tmp_path.parent / "escape").exists()


# ------------------------------------------------------------------ the dev server's range pool
@pytest.fixture
def store(tmp_path):
    db = Store(str(tmp_path / "dev.db"))
    yield db
    db.close()


def test_unreported_ranges_are_released_at_the_final_update(store):
    first = store.add_job({"jobsetID": "7"})
    store.add_ranges(first, [{"eventRangeID": f"r{i}"} for i in range(4)])
    taken = store.take_ranges(first, 3)
    assert [r["eventRangeID"] for r in taken] == ["r0", "r1", "r2"]
    store.update_range("r0", "finished", {})
    store.record_update(first, "running", {})
    assert {r["range_id"]: r["status"] for r in store.ranges(first)}["r1"] == "assigned"
    store.record_update(first, "failed", {})
    assert {r["range_id"]: r["status"] for r in store.ranges(first)} == {
        "r0": "finished", "r1": "ready", "r2": "ready", "r3": "ready"}


def test_jobset_consumers_share_ranges(store):
    first = store.add_job({"jobsetID": "7"})
    other = store.add_job({"jobsetID": 8})
    second = store.add_job({"jobsetID": "7"})
    store.add_ranges(first, [{"eventRangeID": "a"}, {"eventRangeID": "b"}])
    store.add_ranges(other, [{"eventRangeID": "x"}])
    store.add_ranges(second, [{"eventRangeID": "own"}])
    assert [r["eventRangeID"] for r in store.take_ranges(second, 1, "7")] == ["own"]
    assert [r["eventRangeID"] for r in store.take_ranges(second, 5, "7")] == ["a", "b"]
    assert store.take_ranges(second, 5, "7") == []
    assert [r["eventRangeID"] for r in store.take_ranges(other, 5, "8")] == ["x"]
    assert store.take_ranges(first, 5, "NULL") == []
