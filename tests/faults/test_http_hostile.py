"""The pilot's HTTP client against a hostile server on loopback: every case ends, with its own error.

Each case runs the real client (``pilot.util.https.HttpClient``) over a real socket against
:mod:`tests.faults.hostile_server`. The bounds on run time are generous (three times the request's
deadline): they prove that nothing hangs, they do not measure speed.
"""

from __future__ import annotations

import resource
import threading
import time

import pytest

from pilot.util import httpconn as hc
from pilot.util.https import HttpClient, HttpError, RequestFailure, failure_info
from tests.faults.hostile_server import HostileServer, gzip_bomb

DEADLINE = 2.0


@pytest.fixture
def hostile():
    with HostileServer() as server:
        yield server


def client(**kw) -> HttpClient:
    settings = dict(timeout=DEADLINE, connect_timeout=DEADLINE, retries=1, backoff=0.05,
                    max_reply_size=4 * 1024 * 1024, max_decoded_size=8 * 1024 * 1024,
                    proxies=hc.ProxySettings())
    settings.update(kw)
    return HttpClient(**settings)


def fails_with(http: HttpClient, url: str, cause: type, method: str = "GET") -> RequestFailure:
    """Run one request that must fail; return the failure after checking its cause and run time."""
    start = time.monotonic()
    with pytest.raises(RequestFailure) as info:
        http.request(url, None if method == "GET" else b"x=1", method=method)
    elapsed = time.monotonic() - start
    assert elapsed < 3 * DEADLINE, f"{url} took {elapsed:.1f} s"
    assert isinstance(info.value.__cause__, cause), repr(info.value.__cause__)
    return info.value


def test_a_good_reply_and_a_kept_alive_connection(hostile):
    http = client()
    assert http.post_form(hostile.url("/ok"), {"a": 1}) == {"StatusCode": "0", "ok": True}
    assert http.post_form(hostile.url("/ok"), {"a": 2})["ok"] is True
    assert len(hostile._conns) == 1  # the second request reused the first connection
    assert http.stats.requests == 2 and http.stats.failures == 0


def test_an_idle_connection_the_server_closed_is_not_used(hostile):
    http = client()
    for _ in range(3):
        assert http.post_form(hostile.url("/ok-then-close"), {}, resend=False) == {"ok": True}
        time.sleep(0.3)  # the server closes the kept-alive connection meanwhile
    assert hostile.count("/ok-then-close") == 3 and http.stats.failures == 0


def test_trickle_ends_at_the_request_deadline(hostile):
    failure = fails_with(client(), hostile.url("/trickle"), hc.DeadlineExceeded)
    assert failure.kind == "timeout" and failure.written


def test_endless_interim_replies_end_at_the_deadline(hostile):
    failure = fails_with(client(), hostile.url("/continue"), hc.DeadlineExceeded)
    assert failure.kind == "timeout"


def test_accepts_then_never_replies(hostile):
    failure = fails_with(client(), hostile.url("/silent"), hc.DeadlineExceeded, method="POST")
    assert failure.kind == "timeout" and failure.written


def test_gzip_bomb_stops_at_the_decoded_cap(hostile):
    gzip_bomb()  # built before the request: building it is not the server being slow
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    failure = fails_with(client(), hostile.url("/gzipbomb"), hc.DecodedTooLarge)
    assert failure.kind == "framing"
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 60, f"the peak resident size grew by {grown_mb:.0f} MB"  # 64 MB decoded would show


@pytest.mark.parametrize("path", ["/oversized", "/endless"])
def test_oversized_reply_stops_at_the_cap(hostile, path):
    fails_with(client(), hostile.url(path), hc.ReplyTooLarge)


@pytest.mark.parametrize("size", ["-5", "zz", "5_0", "+5", "0x5", "%20", "%EF%BC%95"])
def test_bad_chunk_sizes(hostile, size):
    fails_with(client(), hostile.url(f"/chunk/{size}"), hc.BadChunkSize)


@pytest.mark.parametrize("value", ["%C2%B2", "%EF%BC%91%EF%BC%90", "-1", "1e3", "10,12", "0x0a", "%2B10"])
def test_bad_content_lengths(hostile, value):
    fails_with(client(), hostile.url(f"/length/{value}"), hc.BadContentLength)


def test_content_length_next_to_chunking(hostile):
    fails_with(client(), hostile.url("/cl-and-te"), hc.BadContentLength)


def test_repeated_identical_content_length_is_accepted(hostile):
    assert client().get(hostile.url("/length/10,10")) == b"0123456789"


def test_connection_reset_mid_body(hostile):
    failure = fails_with(client(), hostile.url("/reset"), ConnectionResetError)
    assert failure.written


def test_connection_closed_mid_body(hostile):
    fails_with(client(), hostile.url("/cut"), hc.TruncatedReply)


# ---------------------------------------------------------------------------- what is sent again
def test_work_handing_call_is_not_resent_once_written(hostile):
    http = client(retries=4)
    with pytest.raises(RequestFailure) as info:
        http.post_form(hostile.url("/silent"), {"siteName": "X"}, resend=False)
    assert "not sent again" in str(info.value) and info.value.written
    assert hostile.count("/silent") == 1


def test_update_is_resent_after_a_time_out(hostile):
    http = client(retries=2, timeout=0.5)
    with pytest.raises(RequestFailure):
        http.post_form(hostile.url("/silent"), {"state": "running"})
    assert hostile.count("/silent") == 2


def test_work_handing_call_is_retried_after_503_but_not_after_500(hostile):
    http = client(retries=3)
    assert http.post_form(hostile.url("/sequence/503,503,200"), {}, resend=False) == {"StatusCode": "0"}
    assert hostile.count("/sequence/503,503,200") == 3
    with pytest.raises(HttpError) as info:
        http.post_form(hostile.url("/sequence/500,200"), {}, resend=False)
    assert info.value.status == 500 and hostile.count("/sequence/500,200") == 1
    assert http.post_form(hostile.url("/sequence/500,200"), {}) == {"StatusCode": "0"}  # an update: again


def test_work_handing_call_is_retried_when_the_connection_is_refused():
    probe = HostileServer()
    port = probe.port
    probe.close()  # nothing listens there now
    http = client(retries=3)
    with pytest.raises(RequestFailure) as info:
        http.post_form(f"http://127.0.0.1:{port}/server/panda/getJob", {}, resend=False)
    assert info.value.kind == "unreachable" and not info.value.written
    assert "after 3 attempt(s)" in str(info.value)
    assert http.never_answered(f"http://127.0.0.1:{port}/server/panda/").startswith("POST")


# ---------------------------------------------------------------------------- failures that cannot heal
def test_404_is_permanent_and_not_retried(hostile):
    http = client(retries=5)
    with pytest.raises(HttpError) as info:
        http.post_form(hostile.url("/nothing/here"), {})
    assert failure_info(info.value) == ("http", True) and hostile.count("/nothing/here") == 1
    assert "HTTP 404" in http.never_answered(hostile.url("/nothing/"))


def test_unsupported_scheme_is_permanent():
    with pytest.raises(RequestFailure) as info:
        client().post_form("ftp://example.org/server/panda/getJob", {})
    assert failure_info(info.value) == ("scheme", True)


def test_tls_verification_failure_is_permanent(tmp_path):
    from pilot.devserver.control import DevServer

    with DevServer(tmp_path / "server", https=True) as server:
        http = client(retries=5, cacert="/etc/ssl/certs/ca-certificates.crt")  # not the dev server's CA
        start = time.monotonic()
        with pytest.raises(RequestFailure) as info:
            http.post_form(server.https_url + "/server/panda/getJob", {}, resend=False)
        assert time.monotonic() - start < 3 * DEADLINE
        assert failure_info(info.value) == ("tls", True) and "verification failed" in str(info.value)
        assert len(server.requests("getJob")) == 0


# ---------------------------------------------------------------------------- stop means stop
def test_back_off_ends_when_the_stop_event_is_set():
    probe = HostileServer()
    port = probe.port
    probe.close()
    stop = threading.Event()
    http = client(retries=10, backoff=30, max_backoff=60, stop_event=stop)
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    start = time.monotonic()
    try:
        with pytest.raises(RequestFailure):
            http.post_form(f"http://127.0.0.1:{port}/server/panda/updateJob", {})
    finally:
        timer.cancel()
    assert time.monotonic() - start < 10  # one back-off alone would be 15-30 s


def test_a_request_made_while_stopping_gets_the_short_deadline(hostile):
    stop = threading.Event()
    stop.set()
    http = client(timeout=60, stop_maxtime=1.0, stop_event=stop, retries=3)
    start = time.monotonic()
    with pytest.raises(RequestFailure) as info:
        http.post_form(hostile.url("/silent"), {"state": "failed"})
    assert time.monotonic() - start < 10 and info.value.kind == "timeout"
    assert hostile.count("/silent") == 1  # no back-off, no second try once stopping


# ---------------------------------------------------------------------------- downloads
def test_download_streams_to_the_file_and_honours_its_cap(hostile, tmp_path):
    http = client()
    target = tmp_path / "reply.json"
    assert http.download(hostile.url("/ok"), str(target)) == target.stat().st_size > 0
    with pytest.raises(RequestFailure) as info:
        http.download(hostile.url("/ok"), str(tmp_path / "small"), max_size=5)
    assert isinstance(info.value.__cause__, hc.ReplyTooLarge)
    assert not list(tmp_path.glob("small*"))  # nothing left behind
    gzip_bomb()
    with pytest.raises(RequestFailure) as info:
        http.download(hostile.url("/gzipbomb"), str(tmp_path / "bomb"))
    assert isinstance(info.value.__cause__, hc.DecodedTooLarge) and not list(tmp_path.glob("bomb*"))
