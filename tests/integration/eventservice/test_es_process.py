"""ESProcess, ESManager and the generic work executor with the project's test payload (real processes).

Ranges come from in-memory hooks or a fake communicator; uploads go to a directory through a fake
stage-out client (the Data API path is covered by the e2e tests).
"""

import importlib.util
import os
import shutil
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.eventservice.esprocess import ESHook, ESManager, ESProcess
from pilot.eventservice.workexecutor import WorkExecutor
from tests.payload_procs import wait_gone

PAYLOAD = Path(__file__).resolve().parents[3] / "pilot" / "eventservice" / "testpayload.py"
BACKENDS = ["stdlib"] + (["pyzmq"] if importlib.util.find_spec("zmq") else [])


@pytest.fixture(autouse=True, params=BACKENDS)
def channel_backend(request, monkeypatch):
    """Every case with each ROUTER of the payload channel."""
    monkeypatch.setenv("PILOT_ES_CHANNEL", request.param)
    return request.param


def make_ranges(n, tag="r"):
    return [{"eventRangeID": f"{tag}{i}", "LFN": "in.root", "GUID": "G", "scope": "s",
             "startEvent": 10 * i + 1, "lastEvent": 10 * i + 3} for i in range(n)]


class Hook(ESHook):
    def __init__(self, workdir, ranges, args=""):
        self.workdir = str(workdir)
        self.ranges = list(ranges)
        self.args = args
        self.messages = []
        self.lock = threading.Lock()

    def get_payload(self):
        return {"executable": f"{sys.executable} {PAYLOAD} {self.args}", "workdir": self.workdir}

    def get_event_ranges(self, num_ranges=1):
        with self.lock:
            out, self.ranges = self.ranges[:num_ranges], self.ranges[num_ranges:]
        return out

    def handle_out_message(self, message):
        with self.lock:
            self.messages.append(message)


def test_es_manager_with_four_workers(tmp_path):
    hook = Hook(tmp_path / "wd", make_ranges(20), "--workers 4 --fail r5")
    assert ESManager(hook, waiting_time=10).run() == 0
    by_id = {m["id"]: m for m in hook.messages}
    assert len(hook.messages) == 20 and len(by_id) == 20  # each range exactly once
    assert by_id["r5"]["status"] == "failed"
    for i in range(20):
        if i == 5:
            continue
        out = Path(by_id[f"r{i}"]["output"])
        assert out.parent == tmp_path / "wd"
        assert [int(line.split()[3]) for line in out.read_text().splitlines()] == [10 * i + 1, 10 * i + 2, 10 * i + 3]


def test_payload_ignoring_no_more_events_is_stopped(tmp_path):
    hook = Hook(tmp_path, make_ranges(2), "--ignore-no-more-events --pid-file payload.pid")
    proc = ESProcess(hook.get_payload(), waiting_time=1)
    proc.set_get_event_ranges_hook(hook.get_event_ranges)
    proc.set_handle_out_message_hook(hook.handle_out_message)
    started = time.monotonic()
    proc.start()
    proc.join(30)
    assert not proc.is_alive() and proc.timed_out
    assert time.monotonic() - started < 20
    assert len(hook.messages) == 2 and proc.poll() == 128 + 15
    assert wait_gone(int((tmp_path / "payload.pid").read_text()), "testpayload", cwd=str(tmp_path))


def test_kill_keeps_the_messages_already_sent(tmp_path):
    hook = Hook(tmp_path, make_ranges(50), "--delay 0.2 --pid-file payload.pid")
    proc = ESProcess(hook.get_payload(), waiting_time=30)
    proc.set_get_event_ranges_hook(hook.get_event_ranges)
    proc.set_handle_out_message_hook(hook.handle_out_message)
    proc.start()
    deadline = time.monotonic() + 30
    while len(hook.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill("test")
    proc.join(30)
    assert not proc.is_alive() and not proc.timed_out
    done = {m["id"] for m in hook.messages}
    assert 2 <= len(done) < 50
    # ranges handed out = ranges reported + at most the one in flight
    assert proc.ranges_sent - len(done) <= 1
    assert wait_gone(int((tmp_path / "payload.pid").read_text()), "testpayload", cwd=str(tmp_path))


def test_payload_failure_and_missing_executable(tmp_path):
    hook = Hook(tmp_path, make_ranges(3), "--stop-after 1 --exit-code 3")
    assert ESManager(hook, waiting_time=5).run() == 3
    assert len(hook.messages) == 1
    proc = ESProcess({"workdir": str(tmp_path)})
    proc.set_get_event_ranges_hook(hook.get_event_ranges)
    proc.set_handle_out_message_hook(hook.handle_out_message)
    proc.start()
    proc.join(10)
    assert proc.poll() == -1 and proc.failure.code == ErrorCodes.SETUPFAILURE


class FakeCommunicator:
    name = "fake"

    def __init__(self, ranges):
        self.ranges = list(ranges)
        self.updates = []
        self.asked = []

    def get_event_ranges(self, fields):
        self.asked.append(fields)
        out, self.ranges = self.ranges[:fields["nRanges"]], self.ranges[fields["nRanges"]:]
        return out

    def update_event_ranges(self, ranges, version=1):
        self.updates.append((time.monotonic(), version, ranges))
        return {"StatusCode": 0}


class DirectoryClient:
    """A stand-in for StageOutESClient: copies the file into a directory and describes it."""

    def __init__(self, storage):
        self.storage = storage
        self.times = []

    def transfer(self, files, activity=None, **kwargs):
        for spec in files:
            src = os.path.join(spec.workdir, spec.lfn)
            shutil.copy(src, os.path.join(self.storage, spec.lfn))
            data = Path(src).read_bytes()
            spec.filesize, spec.checksum = len(data), {"adler32": f"{zlib.adler32(data) & 0xffffffff:08x}"}
            spec.status, spec.status_code = "transferred", 0
            self.times.append(time.monotonic())
        return files


def test_generic_work_executor(tmp_path):
    from pilot.info.jobdata import JobData

    job = JobData.from_definition({"PandaID": "77", "jobsetID": "5", "taskID": "2", "coreCount": "2"})
    job.workdir = str(tmp_path / "job")
    storage = tmp_path / "storage"
    storage.mkdir()
    client = DirectoryClient(str(storage))
    comm = FakeCommunicator(make_ranges(12))
    work = WorkExecutor(args={"executor_type": "generic"}, communicator=comm, stageout_gap=0.6,
                        client_factory=lambda: client, waiting_time=10)
    work.set_payload({"executable": f"{sys.executable} {PAYLOAD} --delay 0.25 --workers 2 --fail r3",
                      "workdir": job.workdir, "job": job})
    assert work.start(timeout=30)
    assert work.get_pid()
    assert work.wait(60) == 0
    plugin = work.plugin
    assert sorted(plugin.finished_ranges) == sorted(f"r{i}" for i in range(12) if i != 3)
    assert plugin.failed_ranges == ["r3"] and job.nevents == 11 * 3
    assert all(a == {"pandaID": "77", "jobsetID": "5", "taskID": "2", "nRanges": 4} for a in comm.asked)
    # uploads at most every 0.6 s (the first at once, the last when the payload has ended)
    gaps = [b - a for a, b in zip(client.times, client.times[1:])][:-1]
    assert len(client.times) >= 3 and all(gap >= 0.55 for gap in gaps), client.times
    reported = {}
    for _, version, ranges in comm.updates:
        if version == 1:
            record = ranges[0]["zipFile"]
            data = (storage / record["lfn"]).read_bytes()
            assert record["adler32"] == f"{zlib.adler32(data) & 0xffffffff:08x}" and record["fsize"] == len(data)
            for entry in ranges[0]["eventRanges"]:
                assert entry["eventRangeID"] not in reported
                reported[entry["eventRangeID"]] = record["lfn"]
    assert len(reported) == 11
    assert not list(Path(job.workdir).glob("testpayload.out.*")) and not list(Path(job.workdir).glob("*.tar"))
    assert not plugin.communication_manager.is_alive()


@pytest.mark.parametrize("es_type", ["raythena", "mpi"])
def test_unavailable_executor_types(es_type):
    with pytest.raises(Exception) as info:
        WorkExecutor(args={"executor_type": es_type}, communicator=FakeCommunicator([])).start()
    assert info.value.code == ErrorCodes.NOTIMPLEMENTED
