"""pilot.util.realtimelog: targets, documents, the drop and block policies (no collector needed)."""

import logging
import socket
import time
import types

import pytest

from pilot.util import realtimelog as rt


@pytest.mark.parametrize("text, expected", [
    ("collector.example.org:5044", rt.Target("tcp", "collector.example.org", 5044)),
    ("tcp:127.0.0.1:9000", rt.Target("tcp", "127.0.0.1", 9000)),
    ("logstash:10.0.0.1:5000", rt.Target("tcp", "10.0.0.1", 5000)),
    ("http://127.0.0.1:8080/sink/log", rt.Target("http", url="http://127.0.0.1:8080/sink/log")),
    ("logstash;http://aipanda020.cern.ch:8443", rt.Target("http", url="http://aipanda020.cern.ch:8443")),
    ("logstash:https://collector:8443/x", rt.Target("http", url="https://collector:8443/x")),
])
def test_parse_target(text, expected):
    assert rt.parse_target(text) == expected


@pytest.mark.parametrize("text", ["", "nohost", "host:notaport", "host:70000"])
def test_parse_target_rejects(text):
    with pytest.raises(ValueError):
        rt.parse_target(text)


def closed_port():
    """A local TCP port nobody listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def make_logger(handler):
    log = logging.getLogger(f"test.realtime.{id(handler)}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    return log


def test_document_fields_and_job_info():
    handler = rt.RealTimeLogHandler(rt.Target("tcp", "127.0.0.1", closed_port()), static={"queue": "Q"})
    try:
        record = logging.LogRecord("pilot.x", logging.WARNING, __file__, 1, "value %d", (42,), None)
        handler.note_update({"jobId": "777", "state": "running"})
        doc = handler.document(record)
        assert doc["message"] == "value 42" and doc["level"] == "WARNING" and doc["logger"] == "pilot.x"
        assert doc["PandaJobID"] == "777" and doc["queue"] == "Q" and doc["@timestamp"].endswith("Z")
        handler.set_job(types.SimpleNamespace(jobid="5", taskid="9"))
        assert handler.document(record)["TaskID"] == "9"
    finally:
        handler.close(timeout=0)


def test_drop_policy_counts_and_never_blocks():
    handler = rt.RealTimeLogHandler(rt.Target("tcp", "127.0.0.1", closed_port()), queue_size=5, policy="drop")
    log = make_logger(handler)
    start = time.monotonic()
    for i in range(50):
        log.info("line %d", i)
    assert time.monotonic() - start < 1.0
    # at most 5 queued plus one batch in the sender's hands, and gap markers; the rest dropped and counted
    assert handler.sent == 0 and handler.dropped >= 40
    records = [d for d in list(handler._queue) + handler._pending if isinstance(d, dict) and "dropped" not in d]
    assert len(records) + handler.dropped == 50
    handler.close(timeout=0)


def test_block_policy_waits_then_drops():
    handler = rt.RealTimeLogHandler(rt.Target("tcp", "127.0.0.1", closed_port()), queue_size=1, policy="block",
                                    block_timeout=0.3)
    log = make_logger(handler)
    start = time.monotonic()
    for i in range(4):
        log.info("line %d", i)
    elapsed = time.monotonic() - start
    assert elapsed >= 0.5  # at least two of the calls waited for room
    assert handler.dropped >= 2
    handler.close(timeout=0)


def test_start_is_off_without_the_option_and_with_a_bad_target():
    assert rt.start(types.SimpleNamespace(use_realtime_logging=False)) is None
    args = types.SimpleNamespace(use_realtime_logging=True, realtime_logging_server="nonsense", queue="Q",
                                 realtime_logname=None)
    assert rt.start(args) is None
