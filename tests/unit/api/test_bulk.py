"""Bulk stage-in: one tool call for many files; what it leaves behind goes through the per-file path."""

import threading

import pytest
from apitools import ALIASES, FAST, FakeTool, adler

from pilot.api.bulk import wants_bulk
from pilot.api.data import StageInClient
from pilot.common.errorcodes import ErrorCodes as E
from pilot.common.exception import PilotException
from pilot.copytool.common import local_file_path
from pilot.info import FileSpec


class BulkTool(FakeTool):
    """A fake tool with ``copy_in_bulk``: ``bulk_skip`` lfns are not delivered, ``bulk_raise`` fails the call."""

    def __init__(self, name):
        super().__init__(name)
        self.bulk_calls = []
        self.bulk_skip = set()
        self.bulk_raise = None

    def copy_in_bulk(self, files, **kwargs):
        self.bulk_calls.append([(f.lfn, f.turl) for f in files])
        if self.bulk_raise:
            raise PilotException(self.bulk_raise, code=E.STAGEINFAILED)
        for fspec in files:
            if fspec.lfn in self.bulk_skip:
                continue
            with open(fspec.turl[len("file://"):], "rb") as src:
                data = src.read()
            with open(local_file_path(fspec, kwargs.get("workdir", "")), "wb") as out:
                out.write(data)
            fspec.status = "transferred"
        return files


@pytest.fixture
def bulk_tool(monkeypatch):
    import sys

    tool = BulkTool("fakect.fake")
    monkeypatch.setitem(sys.modules, "fakect.fake", tool)
    return tool


def infiles(site, count, store="DISK", **kw):
    out = []
    for i in range(count):
        data = f"bulk file {i}".encode() * 5
        site.put(store, "tests", f"b{i}.dat", data)
        out.append(FileSpec(type="input", scope="tests", lfn=f"b{i}.dat", filesize=len(data), ddmendpoint=store,
                            checksum={"adler32": adler(data)}, workdir=str(site.work), **kw))
    return out


def stagein(site, files, **kw):
    client = StageInClient(site.info, acopytools="fake", copytool_aliases=ALIASES, retry_policy=FAST,
                           **kw.pop("client_kw", {}))
    return client.transfer(files, **kw)


def test_many_files_go_in_one_call(site, bulk_tool):
    files = infiles(site, 5)
    stagein(site, files)
    assert len(bulk_tool.bulk_calls) == 1 and len(bulk_tool.bulk_calls[0]) == 5
    assert bulk_tool.calls == []  # no per-file copy was needed
    assert all(f.status == "transferred" and f.status_code == 0 for f in files)
    assert all((site.work / f.lfn).read_bytes() for f in files)


def test_use_bulk_switch(site, bulk_tool):
    stagein(site, infiles(site, 3), use_bulk=False)
    assert bulk_tool.bulk_calls == [] and len(bulk_tool.calls) == 3
    stagein(site, infiles(site, 1), use_bulk=True)
    assert len(bulk_tool.bulk_calls) == 1
    assert wants_bulk(bulk_tool, [1], None) is False and wants_bulk(bulk_tool, [1, 2], None) is True
    assert wants_bulk(FakeTool(), [1, 2, 3], True) is False  # the tool has no copy_in_bulk


def test_files_left_by_the_bulk_call_go_one_by_one(site, bulk_tool):
    files = infiles(site, 4)
    bulk_tool.bulk_skip = {"b1.dat", "b3.dat"}
    stagein(site, files)
    assert sorted(lfn for lfn, _ in bulk_tool.calls) == ["b1.dat", "b3.dat"]
    assert all(f.status == "transferred" for f in files)


def test_failed_bulk_call_falls_back(site, bulk_tool):
    files = infiles(site, 3)
    bulk_tool.bulk_raise = "xrdcp: command not found"
    stagein(site, files)
    assert len(bulk_tool.calls) == 3 and all(f.status == "transferred" for f in files)


def test_corrupt_bulk_copy_moves_to_the_next_replica(site, bulk_tool):
    files = infiles(site, 2, inputddms=["DISK", "DISK2"])
    data = b"bulk file 0" * 5
    site.put("DISK", "tests", "b0.dat", b"BULK FILE 0" * 5)  # same size, wrong bytes on the first storage
    site.put("DISK2", "tests", "b0.dat", data)
    stagein(site, files)
    assert files[0].status == "transferred" and files[0].ddmendpoint == "DISK2"
    assert (site.work / "b0.dat").read_bytes() == data
    # the corrupt replica was not read a second time by the per-file path
    assert [turl for lfn, turl in bulk_tool.calls if lfn == "b0.dat"] == [files[0].turl]


def test_only_replica_corrupt_is_1171(site, bulk_tool):
    files = infiles(site, 2)
    site.put("DISK", "tests", "b1.dat", b"BULK FILE 1" * 5)
    with pytest.raises(PilotException) as err:
        stagein(site, files)
    assert err.value.get_error_code() == E.GETADMISMATCH
    assert files[0].status == "transferred" and files[1].status == "failed"
    assert bulk_tool.calls == []


class RecordingHttp:
    def __init__(self):
        self.posts = []
        self.threads = set()
        self.lock = threading.Lock()

    def post_json(self, url, obj, **kw):
        with self.lock:
            self.posts.append(obj)
            self.threads.add(threading.current_thread().name)


def test_one_trace_per_bulk_file(site, bulk_tool, monkeypatch):
    monkeypatch.setenv("PILOT_USE_RUCIO_TRACES", "true")
    http = RecordingHttp()
    files = infiles(site, 6)
    bulk_tool.bulk_skip = {"b2.dat"}
    stagein(site, files, client_kw={"trace_url": "http://127.0.0.1:1/traces/", "http": http})
    records = [r for p in http.posts for r in (p if isinstance(p, list) else [p])]
    assert len(http.posts) == 1, "one POST for the traces of one transfer"
    names = sorted(r["filename"] for r in records)
    assert names == sorted(f.lfn for f in files)
    assert all(r["clientState"] == "DONE" and r["protocol"] == "fake" for r in records)
    assert all(r["transferStart"] and r["validateStart"] and r["timeEnd"] for r in records)


def test_large_files_skip_the_bulk_call_unless_forced():
    from pilot.api.bulk import BULK_MAX_FILESIZE, split_for_bulk
    from pilot.info import FileSpec

    small = FileSpec(type="input", lfn="s", filesize=10_000)
    unknown = FileSpec(type="input", lfn="u")
    large = FileSpec(type="input", lfn="l", filesize=BULK_MAX_FILESIZE + 1)
    assert split_for_bulk([small, large, unknown], None) == ([small, unknown], [large])
    assert split_for_bulk([small, large], True) == ([small, large], [])
