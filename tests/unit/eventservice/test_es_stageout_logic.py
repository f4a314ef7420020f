"""Packing of range outputs, their destinations, and the generic executor's stage-out rules.

The upload is replaced by a fake (the real one is exercised by the e2e tests); everything else is
the real code.
"""

import tarfile
import time
from types import SimpleNamespace

import pytest

from pilot.common.exception import PilotException, StageOutFailure
from pilot.eventservice import stageout
from pilot.eventservice.workexecutor.plugins import genericexecutor
from pilot.eventservice.workexecutor.plugins.genericexecutor import GenericExecutor


def write(path, text="x"):
    path.write_text(text)
    return str(path)


def test_pack_outputs(tmp_path):
    a = write(tmp_path / "out.a", "A")
    (tmp_path / "sub").mkdir()
    b = write(tmp_path / "sub" / "out.b", "B")
    outside = tmp_path.parent / "outside.c"
    outside.write_text("C")
    messages = [{"id": "a", "output": a}, {"id": "b", "output": "sub/out.b"}, {"id": "c", "output": str(outside)},
                {"id": "d", "output": str(tmp_path / "missing")}, {"id": "e", "output": b}]
    tarball, packed, bad = stageout.pack_outputs(messages, str(tmp_path))
    assert tarball == str(tmp_path / "EventService_premerge_a.tar")
    assert [m["id"] for m in packed] == ["a", "b"] and [m["id"] for m in bad] == ["c", "d", "e"]
    with tarfile.open(tarball) as tar:
        assert {m.name: tar.extractfile(m).read() for m in tar.getmembers()} == {"out.a": b"A", "out.b": b"B"}
    assert not (tmp_path / "EventService_premerge_a.tar.part").exists()


def test_pack_nothing(tmp_path):
    assert stageout.pack_outputs([], str(tmp_path)) == ("", [], [])
    tarball, packed, bad = stageout.pack_outputs([{"id": "x", "output": "nope"}], str(tmp_path))
    assert (tarball, packed, [m["id"] for m in bad]) == ("", [], ["x"])
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("astorages, expected", [
    ({"es_events": ["OS_ES"], "es_failover": ["DISK"], "pw": ["DISK"]}, ("OS_ES", "DISK")),
    ({"pw": ["DISK"], "es_failover": ["DISK"]}, ("DISK", None)),
    ({"w": ["W"]}, ("W", None)),
    ({}, ("", None)),
])
def test_destinations(astorages, expected):
    assert stageout.es_destinations(SimpleNamespace(astorages=astorages)) == expected


class FakeManager:
    def __init__(self):
        self.updates = []

    def update_events(self, update):
        self.updates.append(update)


class FakeUpload:
    def __init__(self, fail=0):
        self.calls = []
        self.fail = fail

    def __call__(self, path, job, infosys, factory, kwargs):
        self.calls.append((time.monotonic(), path))
        if self.fail:
            self.fail -= 1
            raise StageOutFailure("storage down")
        with tarfile.open(path) as tar:
            names = tar.getnames()
        return stageout.Uploaded(lfn=path.rsplit("/", 1)[-1], ddmendpoint="DISK", storage_id=3, fsize=len(names),
                                 checksum={"adler32": "01020304"})


@pytest.fixture
def executor(tmp_path, monkeypatch):
    def make(gap=0.0, fail=0):
        upload = FakeUpload(fail)
        monkeypatch.setattr(genericexecutor, "upload", upload)
        job = SimpleNamespace(jobid="1", workdir=str(tmp_path), nevents=0)
        ex = GenericExecutor(payload={"job": job}, communication_manager=FakeManager(), stageout_gap=gap)
        ex.upload = upload
        return ex

    return make


def finished(tmp_path, ex, rid, events=(1, 5)):
    ex._ranges[rid] = {"eventRangeID": rid, "startEvent": events[0], "lastEvent": events[1]}
    ex.handle_out_message({"id": rid, "status": "finished", "output": write(tmp_path / f"out.{rid}", rid)})


def test_first_batch_at_once_then_the_gap(tmp_path, executor):
    ex = executor(gap=60)
    finished(tmp_path, ex, "r1")
    assert ex._due_in() == 0
    ex.stageout_es()
    finished(tmp_path, ex, "r2")
    finished(tmp_path, ex, "r3")
    assert 59 < ex._due_in() <= 60
    ex.stageout_es()  # not due: nothing happens
    assert len(ex.upload.calls) == 1
    ex.stageout_es(force=True)
    assert len(ex.upload.calls) == 2
    updates = ex.communication_manager.updates
    assert [u["version"] for u in updates] == [1, 1]
    assert [e["eventRangeID"] for e in updates[1]["eventRanges"][0]["eventRanges"]] == ["r2", "r3"]
    assert updates[1]["eventRanges"][0]["zipFile"]["lfn"] == "EventService_premerge_r2.tar"
    assert ex.finished_ranges == ["r1", "r2", "r3"] and ex.get_job().nevents == 15
    # staged outputs and tarballs are removed from the work dir
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert ex._due_in() is None


def test_failed_ranges_are_reported_at_once(tmp_path, executor):
    ex = executor()
    ex.handle_out_message({"id": "r9", "status": "fatal", "message": "ERR_TE_FATAL r9: x"})
    assert ex.communication_manager.updates == [
        {"version": 0, "eventRanges": [{"eventRangeID": "r9", "eventStatus": "fatal", "errorCode": 1220}]}]
    assert ex.failed_ranges == ["r9"] and ex._due_in() is None


def test_stageout_failure_is_retried_then_reported_failed(tmp_path, executor):
    ex = executor(gap=0, fail=5)
    finished(tmp_path, ex, "r1")
    for _ in range(genericexecutor.MAX_STAGEOUT_ATTEMPTS - 1):
        ex.stageout_es()
        assert ex._due_in() == 0 and not ex.communication_manager.updates
    ex.stageout_es()
    assert ex.communication_manager.updates == [
        {"version": 0, "eventRanges": [{"eventRangeID": "r1", "eventStatus": "failed", "errorCode": 1220}]}]
    assert isinstance(ex.stageout_error, PilotException)


def test_forced_stageout_failure_reports_failed_at_once(tmp_path, executor):
    ex = executor(gap=0, fail=1)
    finished(tmp_path, ex, "r1")
    ex.stageout_es(force=True)
    assert ex.communication_manager.updates[0]["version"] == 0 and ex.failed_ranges == ["r1"]


def test_missing_output_is_a_failed_range(tmp_path, executor):
    ex = executor()
    ex.handle_out_message({"id": "r1", "status": "finished", "output": str(tmp_path / "gone")})
    ex.stageout_es()
    assert ex.failed_ranges == ["r1"] and not ex.upload.calls


def test_undelivered_update_is_kept_and_resent(tmp_path, executor):
    ex = executor()
    calls = []

    def flaky(update):
        calls.append(update)
        if len(calls) == 1:
            raise StageOutFailure("server down")

    ex.communication_manager.update_events = flaky
    finished(tmp_path, ex, "r1")
    ex.stageout_es()
    assert len(ex._pending_updates) == 1
    assert ex.flush_updates() and len(calls) == 2 and calls[0] == calls[1]
