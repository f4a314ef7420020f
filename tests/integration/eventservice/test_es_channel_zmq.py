"""The event-range channel over real Unix sockets, with each ROUTER backend (pyzmq and the stdlib ZMTP).

Peers: pyzmq DEALERs (libzmq 4.3, ZMTP/3.1), the project's standard-library DEALER, and hand-written
ZMTP/2.0 and ZMTP/3 peers built from the specifications (no libzmq 3.x can be installed here: PyPI's
pyzmq wheels bundle libzmq 4.3 and Debian ships no libzmq 3.2).
"""

import os
import queue
import sys
import socket
import uuid

import pytest

from pilot.common.exception import MessageFailure
from pilot.eventservice.channel import NO_MORE_EVENTS, READY, endpoint, socket_path
from pilot.eventservice.esprocess.esmessage import Flushed, MessageThread, PeerClosed
from pilot.eventservice.zmtp import DealerClient, command, parse_properties

zmq = pytest.importorskip("zmq")

BACKENDS = ["stdlib", "pyzmq"]
SIGNATURE = b"\xff" + b"\x00" * 8 + b"\x7f"


def unique(tag):
    return f"EventService_EventRanges_t{os.getpid()}_{tag}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def channel(request):
    """A started MessageThread on a fresh name; yields (thread, inbox); checks the socket file goes."""
    made = []

    def make(backend, tag="c"):
        inbox = queue.Queue()
        thread = MessageThread(inbox, unique(tag), backend=backend)
        thread.start()
        made.append(thread)
        return thread, inbox

    yield make
    for thread in made:
        thread.stop()
        thread.join(10)
        assert not thread.is_alive()
        assert not os.path.exists(socket_path(thread.socket_name))


@pytest.fixture
def ctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def dealer(ctx, thread, identity=None):
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 10000)
    if identity:
        sock.setsockopt(zmq.ROUTING_ID, identity)
    sock.connect(thread.endpoint)
    return sock


def items_until_flushed(thread, inbox):
    thread.flush()
    items = []
    while not items or not isinstance(items[-1], Flushed):
        items.append(inbox.get(timeout=10))
    return items


@pytest.mark.parametrize("backend", BACKENDS)
def test_routes_replies_to_each_dealer_and_reports_closes(backend, channel, ctx):
    thread, inbox = channel(backend)
    assert thread.backend == backend and thread.endpoint == f"ipc:///tmp/zmq_{thread.socket_name}"
    dealers = [dealer(ctx, thread) for _ in range(3)]
    for i, sock in enumerate(dealers):
        sock.send(f"{READY} {i}".encode())
    received = sorted((inbox.get(timeout=10) for _ in dealers), key=str)
    for message in received:
        thread.send(f"reply to {message}", message)
    for i, sock in enumerate(dealers):
        assert sock.recv() == f"reply to {READY} {i}".encode()
    # the default target is the last sender
    dealers[2].send(b"second")
    assert inbox.get(timeout=10) == "second"
    thread.send("to the last sender")
    assert dealers[2].recv() == b"to the last sender"
    # one long message stays one message
    big = "x" * 300000
    dealers[0].send(big.encode())
    assert inbox.get(timeout=10) == big
    assert thread.open_peers == 3
    dealers[1].send(b"last words")
    gone = inbox.get(timeout=10)
    dealers[1].close()
    closed = inbox.get(timeout=10)
    assert gone == "last words" and isinstance(closed, PeerClosed)
    assert thread.open_peers == 2
    with pytest.raises(MessageFailure):  # ROUTER_MANDATORY: a gone peer is an error, not a silent drop
        thread.send("to nobody", gone)
    assert isinstance(items_until_flushed(thread, inbox)[-1], Flushed)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_trailing_nul_is_sent_and_one_is_stripped_on_receipt(backend, channel, ctx):
    thread, inbox = channel(backend)
    sock = dealer(ctx, thread)
    sock.send(b"Ready for events\0")
    message = inbox.get(timeout=10)
    assert message == READY
    thread.send(NO_MORE_EVENTS + "\0", message)
    assert sock.recv() == b"No more events"
    sock.send(b'[{"eventRangeID": "r1"}]')
    thread.send(NO_MORE_EVENTS, inbox.get(timeout=10))
    assert sock.recv() == NO_MORE_EVENTS.encode()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dealer_that_reconnects_is_served_again(backend, channel, ctx):
    thread, inbox = channel(backend)
    for attempt in range(3):
        sock = dealer(ctx, thread, identity=b"athenamp")
        sock.send(f"{READY} {attempt}".encode())
        message = inbox.get(timeout=10)
        assert message == f"{READY} {attempt}"
        thread.send(f"range {attempt}", message)
        assert sock.recv() == f"range {attempt}".encode()
        sock.close()
        assert isinstance(inbox.get(timeout=10), PeerClosed)
    assert thread.open_peers == 0
    # a second connection under the same identity while the first is still open takes over
    first = dealer(ctx, thread, identity=b"athenamp")
    first.send(b"one")
    thread.send("to one", inbox.get(timeout=10))
    assert first.recv() == b"to one"
    second = dealer(ctx, thread, identity=b"athenamp")
    second.send(b"two")
    message = next(item for item in iter(lambda: inbox.get(timeout=10), None) if isinstance(item, str))
    assert message == "two"
    thread.send("to two", message)
    assert second.recv() == b"to two"


@pytest.mark.parametrize("backend", BACKENDS)
def test_stdlib_dealer_talks_to_the_router(backend, channel):
    thread, inbox = channel(backend)
    clients = [DealerClient(thread.endpoint, timeout=10) for _ in range(2)]
    for i, client in enumerate(clients):
        client.send(f"{READY} {i}")
    for _ in clients:
        message = inbox.get(timeout=10)
        thread.send(f"answer {message[-1]}", message)
    assert [client.receive() for client in clients] == ["answer 0", "answer 1"]
    for client in clients:
        client.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_stale_socket_is_cleared_live_or_foreign_files_refused(backend, channel):
    name = unique("stale")
    path = socket_path(name)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: what a killed pilot leaves
    assert os.path.exists(path)
    thread = MessageThread(queue.Queue(), name, backend=backend)
    try:
        with pytest.raises(MessageFailure):  # a live listener is never stolen
            MessageThread(queue.Queue(), name, backend=backend)
    finally:
        thread.terminate()
    assert not os.path.exists(path)
    with open(path, "w") as handle:
        handle.write("not a socket")
    try:
        with pytest.raises(MessageFailure):
            MessageThread(queue.Queue(), name, backend=backend)
    finally:
        os.unlink(path)


def _read(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def _read_frame(sock):
    flags = _read(sock, 1)[0]
    size = int.from_bytes(_read(sock, 8), "big") if flags & 0x02 else _read(sock, 1)[0]
    return flags, _read(sock, size)


def _connect(thread):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(socket_path(thread.socket_name))
    return sock


def zmtp2_dealer(thread):
    """A ZMTP/2.0 DEALER as libzmq 3.2 (yampl 1.x) speaks it (15/ZMTP), written from the specification."""
    sock = _connect(thread)
    sock.sendall(b"\xff" + b"\x00" * 7 + b"\x01\x7f")  # padding = identity size + 1, as libzmq 3.2
    peer_signature = _read(sock, 10)
    assert peer_signature[0] == 0xFF and peer_signature[9] & 0x01
    sock.sendall(b"\x01\x05")  # revision 1 (ZMTP/2.0), socket type DEALER
    revision, socket_type = _read(sock, 2)
    assert revision >= 1 and socket_type == 0x06  # a ROUTER
    sock.sendall(b"\x00\x00")  # empty identity
    assert _read_frame(sock) == (0, b"")  # the router's identity frame
    return sock


@pytest.mark.parametrize("backend", BACKENDS)
def test_zmtp2_peer(backend, channel):
    thread, inbox = channel(backend)
    sock = zmtp2_dealer(thread)
    sock.sendall(b"\x00" + bytes([len(READY)]) + READY.encode())
    message = inbox.get(timeout=10)
    assert message == READY
    reply = '[{"eventRangeID": "1-2-3", "startEvent": 1, "lastEvent": 5, "GUID": "G"}]' + " " * 300
    thread.send(reply, message)
    assert _read_frame(sock) == (0x02, reply.encode())  # a LONG final frame in ZMTP/2.0 framing
    sock.sendall(b"\x00\x04done")
    assert inbox.get(timeout=10) == "done"
    sock.close()
    assert isinstance(inbox.get(timeout=10), PeerClosed)


def zmtp3_dealer(thread, socket_type=b"DEALER"):
    """A ZMTP/3.1 NULL-mechanism peer from 37/ZMTP: full greeting, READY, then traffic."""
    sock = _connect(thread)
    sock.sendall(SIGNATURE + b"\x03\x01" + b"NULL".ljust(20, b"\0") + b"\x00" + b"\x00" * 31)
    greeting = _read(sock, 64)
    assert greeting[0] == 0xFF and greeting[10] == 3 and greeting[12:32].rstrip(b"\0") == b"NULL"
    name = b"Socket-Type"
    sock.sendall(command(b"READY", bytes([len(name)]) + name + len(socket_type).to_bytes(4, "big") + socket_type))
    return sock


@pytest.mark.parametrize("backend", BACKENDS)
def test_zmtp3_handshake_ping_and_refusals(backend, channel, ctx):
    thread, inbox = channel(backend)
    sock = zmtp3_dealer(thread)
    flags, body = _read_frame(sock)
    assert flags == 0x04 and body[1:1 + body[0]] == b"READY"
    assert parse_properties(body[1 + body[0]:])["socket-type"] == b"ROUTER"
    sock.sendall(command(b"PING", b"\x00\x00ctx"))
    flags, body = _read_frame(sock)
    assert flags == 0x04 and body == b"\x04PONGctx"
    sock.sendall(b"\x01\x00\x00\x05hello")  # an envelope frame, then the body: the reply keeps the envelope
    message = inbox.get(timeout=10)
    assert message == "hello"
    thread.send("back", message)
    assert _read_frame(sock) == (0x01, b"") and _read_frame(sock) == (0, b"back")
    sock.close()
    assert isinstance(inbox.get(timeout=10), PeerClosed)
    # a PUB may not talk to a ROUTER, nor may an oversized frame come in (nor, stdlib, a ZMTP/1.0 peer)
    refused = zmtp3_dealer(thread, b"PUB")
    huge = zmtp3_dealer(thread)
    _read_frame(huge)
    huge.sendall(b"\x02" + (1 << 40).to_bytes(8, "big"))
    bad = [refused, huge]
    old = None
    if backend == "stdlib":
        old = _connect(thread)
        old.sendall(b"\x01\x00")  # ZMTP/1.0: a short identity frame, no signature
        bad.append(old)
    for peer in bad:
        if peer is old:  # it got our signature and major version, then the close
            assert _read(old, 11) == b"\xff" + b"\x00" * 7 + b"\x01\x7f\x03"
        rest = b""
        try:
            while True:
                chunk = peer.recv(4096)
                if not chunk:
                    break
                rest += chunk
        except ConnectionResetError:
            pass
        while rest:  # the router closed it, having sent commands at most (READY, ERROR), never a message
            assert rest[0] & 0x04, rest
            rest = rest[2 + rest[1]:]
        peer.close()
    good = dealer(ctx, thread)  # the router still serves the others
    good.send(READY.encode())
    message = next(item for item in iter(lambda: inbox.get(timeout=10), None) if isinstance(item, str))
    assert message == READY
    thread.send(NO_MORE_EVENTS, message)
    assert good.recv() == NO_MORE_EVENTS.encode()


def test_backend_choice(monkeypatch, channel):
    from pilot.eventservice.channel import requested_backend

    monkeypatch.setenv("PILOT_ES_CHANNEL", "stdlib")
    assert requested_backend() == "stdlib"
    thread, _ = channel(None)
    assert thread.backend == "stdlib"
    monkeypatch.setenv("PILOT_ES_CHANNEL", "auto")
    thread, _ = channel(None)
    assert thread.backend == "pyzmq"  # importable here
    monkeypatch.setenv("PILOT_ES_CHANNEL", "yampl")
    with pytest.raises(MessageFailure):
        MessageThread(queue.Queue(), unique("bad"))
    assert endpoint("X") == "ipc:///tmp/zmq_X"


def test_without_pyzmq_auto_is_the_stdlib_router(monkeypatch, channel):
    monkeypatch.setitem(sys.modules, "zmq", None)  # import zmq now fails, as on a node without the extra
    monkeypatch.setenv("PILOT_ES_CHANNEL", "auto")
    thread, inbox = channel(None)
    assert thread.backend == "stdlib"
    client = DealerClient(thread.endpoint, timeout=10)
    client.send(READY)
    thread.send(NO_MORE_EVENTS, inbox.get(timeout=10))
    assert client.receive() == NO_MORE_EVENTS
    client.close()
    monkeypatch.setenv("PILOT_ES_CHANNEL", "pyzmq")
    with pytest.raises(MessageFailure):
        MessageThread(queue.Queue(), unique("nozmq"))
