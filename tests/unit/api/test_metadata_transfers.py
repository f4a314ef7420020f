"""Transfers that are metadata operations (mv linking inputs) run in the calling thread, without a pool.

Everything else about them stays: per-file retries and error classes, one trace batch per transfer,
cancel through the stop event, size-only verification of a link; copy mode and other tools keep the pool.
"""

import os
import threading

import pytest
from apitools import FAST, adler

from pilot.api import bulk, data
from pilot.api.data import StageInClient, StageOutClient
from pilot.common.errorcodes import ErrorCodes as E
from pilot.common.exception import StageInFailure, StageOutFailure
from pilot.copytool import mv
from pilot.copytool.common import deterministic_path, transfers_in_threads
from pilot.info import FileSpec


def infile(site, lfn, data=b"x" * 100, **kw):
    site.put("DISK", "tests", lfn, data)
    kw.setdefault("checksum", {"adler32": adler(data)})
    return FileSpec(type="input", scope="tests", lfn=lfn, filesize=len(data), ddmendpoint="DISK",
                    workdir=str(site.work), **kw)


class NoPool:
    """Stands in for ThreadPoolExecutor where no pool may be started."""

    def __init__(self, *args, **kwargs):
        raise AssertionError("a thread pool was started")


@pytest.fixture
def copy_in_threads(monkeypatch):
    """Names of the threads mv.copy_in ran in."""
    names = []
    real = mv.copy_in

    def recording(files, **kwargs):
        names.append(threading.current_thread().name)
        return real(files, **kwargs)

    monkeypatch.setattr(mv, "copy_in", recording)
    return names


class RecordingHttp:
    def __init__(self):
        self.posts = []

    def post_json(self, url, obj, **kw):
        self.posts.append((url, obj))


def test_mv_hint_per_mode():
    assert mv.parallel_transfers({"copy_type": "symlink"}, True) is False
    assert mv.parallel_transfers({"copy_type": "ln"}, True) is False
    assert mv.parallel_transfers({"copy_type": "ln"}, False) is True  # refused for stage-out: each transfer says so
    assert mv.parallel_transfers({"copytools": {"mv": {"copy_type": "symlink"}}}, True) is False
    assert mv.parallel_transfers({"catchall": "mv_copy_type=symlink"}, True) is False
    # bytes move (a copy; a move is checksummed afterwards and may cross file systems): threads stay
    assert mv.parallel_transfers({}, True) is True
    assert mv.parallel_transfers({"copy_type": "move"}, True) is True
    assert mv.parallel_transfers({"copy_type": "teleport"}, True) is True  # each transfer reports it


def test_tools_without_the_hint_get_threads(fake_tools):
    assert transfers_in_threads(fake_tools["fake"], {"copy_type": "symlink"}, True) is True
    assert transfers_in_threads(mv, {"copy_type": "symlink"}, True) is False


def test_symlink_stage_in_runs_in_the_calling_thread(site, monkeypatch, copy_in_threads):
    monkeypatch.setattr(data, "ThreadPoolExecutor", NoPool)
    files = [infile(site, f"f{i}.dat") for i in range(6)]
    StageInClient(site.info, acopytools="mv", retry_policy=FAST).transfer(files, copy_type="symlink")
    assert all(f.status == "transferred" and f.status_code == 0 for f in files)
    assert all(os.path.islink(site.work / f.lfn) for f in files)
    assert copy_in_threads == [threading.current_thread().name] * 6


def test_copy_mode_keeps_the_pool(site, copy_in_threads):
    files = [infile(site, f"f{i}.dat") for i in range(4)]
    StageInClient(site.info, acopytools="mv", max_workers=4).transfer(files, copy_type="copy")
    assert all(f.status == "transferred" for f in files)
    assert not any(os.path.islink(site.work / f.lfn) for f in files)
    assert len(copy_in_threads) == 4 and all(n.startswith("stage-in-mv") for n in copy_in_threads)


def test_other_tools_keep_the_pool(site, fake_tools):
    seen = []
    real = fake_tools["fake"].copy_in
    fake_tools["fake"].copy_in = lambda files, **kw: (seen.append(threading.current_thread().name), real(files, **kw))
    files = [infile(site, f"f{i}.dat") for i in range(3)]
    StageInClient(site.info, acopytools="fake", copytool_aliases={"fake": "fakect.fake"},
                  max_workers=3).transfer(files, copy_type="symlink")
    assert all(f.status == "transferred" for f in files)
    assert all(n.startswith("stage-in-fake") for n in seen) and len(seen) == 3


def test_a_tool_saying_no_threads_is_run_in_the_calling_thread(site, fake_tools, monkeypatch):
    monkeypatch.setattr(data, "ThreadPoolExecutor", NoPool)
    fake_tools["fake"].parallel_transfers = lambda kwargs, is_stagein: False
    fake_tools["fake"].script["f1.dat"] = ["Connection timed out", "ok"]  # retried as before
    files = [infile(site, f"f{i}.dat") for i in range(3)]
    StageInClient(site.info, acopytools="fake", copytool_aliases={"fake": "fakect.fake"},
                  retry_policy=FAST).transfer(files)
    assert all(f.status == "transferred" for f in files)
    assert [lfn for lfn, _ in fake_tools["fake"].calls] == ["f0.dat", "f1.dat", "f1.dat", "f2.dat"]


def test_one_missing_link_source_is_classified_and_traced(site, monkeypatch):
    monkeypatch.setattr(data, "ThreadPoolExecutor", NoPool)
    monkeypatch.setenv("PILOT_USE_RUCIO_TRACES", "true")
    monkeypatch.setattr(mv, "send_traces", True)  # as a storage-touching tool would
    files = [infile(site, f"f{i}.dat") for i in range(4)]
    os.remove(site.stores["DISK"] / deterministic_path("tests", "f2.dat"))
    http = RecordingHttp()
    client = StageInClient(site.info, acopytools="mv", retry_policy=FAST, trace_url="http://127.0.0.1:1/t/", http=http)
    with pytest.raises(StageInFailure) as err:
        client.transfer(files, copy_type="symlink")
    assert err.value.get_error_code() == E.MISSINGINPUTFILE
    assert [f.status for f in files] == ["transferred", "transferred", "failed", "transferred"]
    assert files[2].status_code == E.MISSINGINPUTFILE and "No such file" in files[2].transfer_error
    assert len(http.posts) == 1, "one trace batch per transfer"
    states = {t["filename"]: t["clientState"] for t in http.posts[0][1]}
    assert states == {"f0.dat": "DONE", "f1.dat": "DONE", "f2.dat": "MISSING_INPUT", "f3.dat": "DONE"}


def test_mv_transfers_send_no_trace(site, monkeypatch):
    """mv places files for the CE and never touches a storage: no Rucio trace (Pilot 2 and 3 send none)."""
    monkeypatch.setattr(data, "ThreadPoolExecutor", NoPool)
    monkeypatch.setenv("PILOT_USE_RUCIO_TRACES", "true")
    files = [infile(site, f"f{i}.dat") for i in range(2)]
    http = RecordingHttp()
    StageInClient(site.info, acopytools="mv", retry_policy=FAST, trace_url="http://127.0.0.1:1/t/",
                  http=http).transfer(files, copy_type="symlink")
    assert [f.status for f in files] == ["transferred", "transferred"]
    assert http.posts == []


def test_a_link_of_the_wrong_size_fails_its_check(site, monkeypatch):
    monkeypatch.setattr(data, "ThreadPoolExecutor", NoPool)
    files = [infile(site, f"f{i}.dat") for i in range(3)]
    files[1].filesize += 1
    with pytest.raises(StageInFailure):
        StageInClient(site.info, acopytools="mv", retry_policy=FAST).transfer(files, copy_type="symlink")
    assert [f.status for f in files] == ["transferred", "failed", "transferred"]
    assert "size mismatch" in files[1].transfer_error and not os.path.lexists(site.work / "f1.dat")


def test_cancel_between_links_is_honoured(site, monkeypatch):
    monkeypatch.setattr(data, "ThreadPoolExecutor", NoPool)
    stop = threading.Event()
    real = mv.copy_in

    def copy_then_cancel(files, **kwargs):
        result = real(files, **kwargs)
        stop.set()  # the pilot is told to stop while the first input is linked
        return result

    monkeypatch.setattr(mv, "copy_in", copy_then_cancel)
    files = [infile(site, f"f{i}.dat") for i in range(4)]
    with pytest.raises(StageInFailure):
        StageInClient(site.info, acopytools="mv", stop_event=stop).transfer(files, copy_type="symlink")
    assert files[0].status == "transferred"
    assert all(f.status == "failed" and f.transfer_error == "cancelled" for f in files[1:])
    assert not any(os.path.lexists(site.work / f.lfn) for f in files[1:])


def test_symlink_stage_out_is_refused(site, tmp_path):
    outs = []
    for i in range(3):
        (site.work / f"o{i}.dat").write_bytes(b"o")
        outs.append(FileSpec(filetype="output", scope="tests", lfn=f"o{i}.dat", workdir=str(site.work)))
    with pytest.raises(StageOutFailure) as err:
        StageOutClient(site.info, acopytools="mv").transfer(outs, copy_type="symlink", output_dir=str(tmp_path / "out"))
    assert err.value.get_error_code() == E.STAGEOUTFAILED
    assert not any(os.path.lexists(tmp_path / "out" / f.lfn) for f in outs)


def test_bulk_checks_run_inline_for_one_file_and_for_a_tool_without_threads(monkeypatch):
    class Client:
        max_workers = 8

        def __init__(self):
            self.threads = []

        def alternatives(self, fspec, kwargs):
            return [{"pfn": f"file:///src/{fspec.lfn}"}]

        def use_alternative(self, fspec, alternative, module, name, kwargs):
            fspec.turl = alternative["pfn"]

        def new_trace(self, fspec, name, kwargs):
            return type("T", (), {"update": lambda self, **kw: None})()

        def verify(self, fspec, kwargs):
            self.threads.append(threading.current_thread().name)

        def finish_trace(self, *args):
            pass

    class Tool:
        @staticmethod
        def copy_in_bulk(files, **kwargs):
            for fspec in files:
                fspec.status = "transferred"

    monkeypatch.setattr(bulk, "ThreadPoolExecutor", NoPool)
    client = Client()
    left, _ = bulk.bulk_stage_in(client, Tool, "tool", [FileSpec(lfn="a")], {})
    assert not left and client.threads == [threading.current_thread().name]
    Tool.parallel_transfers = staticmethod(lambda kwargs, is_stagein: False)
    left, _ = bulk.bulk_stage_in(client, Tool, "tool", [FileSpec(lfn=n) for n in "bcd"], {})
    assert not left and len(client.threads) == 4 and len(set(client.threads)) == 1
