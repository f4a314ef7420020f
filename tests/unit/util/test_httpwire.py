"""The HTTP/1.1 framing of pilot.util.httpwire: replies as servers really send them, and broken ones."""

import io
import socket
import threading

import pytest

from pilot.util.httpwire import Connection, HttpWireError, ServerClosed, read_reply


def reply(raw: bytes, method: str = "GET"):
    return read_reply(io.BufferedReader(io.BytesIO(raw)), method)


def test_content_length_body_and_headers():
    r = reply(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n"
              b"X-A: 1\r\nX-A: 2\r\n\r\n{\"a\":1}extra")
    assert (r.status, r.reason, r.body) == (200, "OK", b'{"a":1}')
    assert r.getheader("content-type") == "application/json" and r.getheader("X-A") == "1, 2"
    assert not r.will_close


def test_chunked_body_with_extensions_and_trailer():
    r = reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert r.body == b"Wikipedia"


def test_interim_100_continue_is_skipped():
    r = reply(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
    assert (r.status, r.body) == (201, b"ok")


def test_close_delimited_body_and_http10():
    r = reply(b"HTTP/1.0 200 OK\r\n\r\nall of it")
    assert r.body == b"all of it" and r.will_close
    r = reply(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert r.body == b"" and r.will_close


def test_no_body_for_head_204_304():
    assert reply(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HEAD").body == b""
    assert reply(b"HTTP/1.1 204 No Content\r\n\r\n").body == b""


def test_folded_header_line():
    r = reply(b"HTTP/1.1 200 OK\r\nX-Long: one\r\n  two\r\nContent-Length: 0\r\n\r\n")
    assert r.getheader("x-long") == "one two"


@pytest.mark.parametrize("raw", [
    b"garbage\r\n\r\n",
    b"HTTP/1.1 2x0 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
])
def test_broken_replies_are_oserrors(raw):
    with pytest.raises(HttpWireError):
        reply(raw)
    assert issubclass(HttpWireError, OSError)


def test_empty_reply_is_server_closed():
    with pytest.raises(ServerClosed):
        reply(b"")
    assert issubclass(ServerClosed, ConnectionResetError)


def test_overlong_line_refused():
    with pytest.raises(HttpWireError):
        reply(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n")


def test_request_bytes_and_header_injection():
    conn = Connection("127.0.0.1", 8080, timeout=5)
    raw = conn._request_bytes("POST", "/server/panda/getJob", {"User-Agent": "pilot"}, b"a=1")
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /server/panda/getJob HTTP/1.1" and "Host: 127.0.0.1:8080" in lines
    assert "Content-Length: 3" in lines and "Accept-Encoding: identity" in lines and body == b"a=1"
    assert b"Host: example.org\r\n" in Connection("example.org", 443, 5, context=object())._request_bytes(
        "GET", "/", {}, None)
    with pytest.raises(ValueError):
        conn._request_bytes("GET", "/", {"X-Evil": "a\r\nInjected: 1"}, None)


def test_keep_alive_over_a_real_socket():
    """Two exchanges on one connection against a tiny server; then the server closes it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    seen = []

    def serve():
        sock, _ = listener.accept()
        with sock, sock.makefile("rb") as rfile:
            for n in range(2):
                request = b""
                while not request.endswith(b"\r\n\r\n"):
                    request += rfile.readline()
                seen.append(request.split(b"\r\n", 1)[0])
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + str(n).encode())
    thread = threading.Thread(target=serve)
    thread.start()
    conn = Connection("127.0.0.1", port, timeout=5)
    try:
        assert conn.exchange("GET", "/a", {}, None).body == b"0"
        assert conn.exchange("GET", "/b", {}, None).body == b"1"
        thread.join(5)
        with pytest.raises((ServerClosed, BrokenPipeError, ConnectionResetError)):
            conn.exchange("GET", "/c", {}, None)
    finally:
        conn.close()
        listener.close()
    assert seen == [b"GET /a HTTP/1.1", b"GET /b HTTP/1.1"]
