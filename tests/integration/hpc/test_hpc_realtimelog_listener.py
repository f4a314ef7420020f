"""Real-time logging against real collectors: a TCP JSON-lines listener that disappears and comes back on
the same port, and the dev server's JSON sink over HTTP. The local log never loses a line."""

import logging
import time

import pytest

from pilot.devserver.control import DevServer
from pilot.util.realtimelog import RealTimeLogHandler, Target
from tests.hpcsite import Listener


def wait_for(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def pilot_like_logger(tmp_path, handler):
    """A logger with a local file (like pilotlog.txt) and the real-time handler side by side."""
    log = logging.getLogger(f"pilot.test.rt.{id(handler)}")
    log.propagate = False
    log.setLevel(logging.INFO)
    local = logging.FileHandler(tmp_path / "pilotlog.txt")
    log.addHandler(local)
    log.addHandler(handler)
    return log, local


def test_listener_disappears_and_comes_back(tmp_path):
    listener = Listener().start()
    handler = RealTimeLogHandler(Target("tcp", "127.0.0.1", listener.port), queue_size=1000, policy="drop")
    handler.set_job(type("Job", (), {"jobid": "5001", "taskid": "42"})())
    log, local = pilot_like_logger(tmp_path, handler)
    try:
        for i in range(20):
            log.info("before %d", i)
        assert wait_for(lambda: len(listener.records) == 20)
        assert listener.records[0]["PandaJobID"] == "5001" and listener.records[0]["TaskID"] == "42"
        listener.stop()  # the collector goes away
        for i in range(30):
            log.info("during %d", i)
            time.sleep(0.02)
        assert wait_for(lambda: handler.reconnects > 0)
        listener = Listener(listener.port).start()  # and comes back on the same port
        for i in range(10):
            log.info("after %d", i)
        expected = [f"after {i}" for i in range(10)]
        assert wait_for(lambda: all(m in listener.messages() for m in expected), timeout=40), handler.queued
        # the records written while it was away were queued and arrive after it came back (the first
        # batch written into the dying connection may be lost: TCP gives no acknowledgement)
        during = [m for m in listener.messages() if m.startswith("during")]
        assert len(during) >= 25, during
        assert listener.messages().index("after 0") > listener.messages().index(during[-1])
        assert handler.dropped == 0
    finally:
        log.removeHandler(handler)
        handler.close(timeout=5)
        listener.stop()
        local.close()
    lines = (tmp_path / "pilotlog.txt").read_text().splitlines()
    assert lines == [f"before {i}" for i in range(20)] + [f"during {i}" for i in range(30)] + \
        [f"after {i}" for i in range(10)]  # the local log has everything


def test_small_queue_drops_counts_and_reports_the_gap(tmp_path):
    listener = Listener().start()
    port = listener.port
    listener.stop()  # nobody listens yet
    handler = RealTimeLogHandler(Target("tcp", "127.0.0.1", port), queue_size=10, policy="drop")
    log, local = pilot_like_logger(tmp_path, handler)
    try:
        for i in range(100):
            log.info("line %d", i)
        assert handler.dropped >= 80
        listener = Listener(port).start()
        assert wait_for(lambda: handler.queued == 0 and len(listener.records) == handler.sent, timeout=40)
        # in order, and every gap is announced where it is, with its exact size
        expected_next, gaps = 0, 0
        for record in listener.records:
            if record.get("dropped"):
                assert "log records dropped" in record["message"]
                expected_next += record["dropped"]
                gaps += record["dropped"]
                continue
            assert record["message"] == f"line {expected_next}"
            expected_next += 1
        assert expected_next == 100 and gaps == handler.dropped
    finally:
        log.removeHandler(handler)
        handler.close(timeout=5)
        listener.stop()
        local.close()
    assert len((tmp_path / "pilotlog.txt").read_text().splitlines()) == 100


@pytest.fixture(scope="module")
def sink_server(tmp_path_factory):
    with DevServer(tmp_path_factory.mktemp("rtserver"), https=False) as server:
        yield server


def test_http_target_posts_json_batches_to_the_sink(tmp_path, sink_server):
    handler = RealTimeLogHandler(Target("http", url=f"{sink_server.url}/sink/pilotlog"), logname="rt-test")
    log, local = pilot_like_logger(tmp_path, handler)
    try:
        handler.note_update({"jobId": "6001", "state": "running"})
        for i in range(25):
            log.warning("http line %d", i)
        assert handler.flush(timeout=20)
    finally:
        log.removeHandler(handler)
        handler.close(timeout=5)
        local.close()
    records = [r for doc in sink_server.sink("pilotlog") for r in doc["body"]]
    assert [r["message"] for r in records] == [f"http line {i}" for i in range(25)]
    assert {r["PandaJobID"] for r in records} == {"6001"} and records[0]["logname"] == "rt-test"
    assert records[0]["level"] == "WARNING" and records[0]["@version"] == "1"
