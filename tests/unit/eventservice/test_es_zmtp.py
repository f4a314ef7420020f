"""The standard-library ZMTP state machine (pilot/eventservice/zmtp.py) without sockets: octets in, octets out."""

import pytest

from pilot.eventservice.zmtp import Connection, ZmtpError, command, encode_frames, parse_properties


def pump(a, b, step=None):
    """Move the octets each side has to send to the other (``step`` octets at a time) until both are quiet."""
    got = {id(a): [], id(b): []}
    while True:
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.outgoing()
            for i in range(0, len(data), step or max(1, len(data))):
                got[id(dst)] += dst.receive(data[i:i + (step or len(data))])
                moved = True
        if not moved:
            return got[id(a)], got[id(b)]


@pytest.mark.parametrize("step", [None, 1, 7])
def test_dealer_and_router_over_zmtp3(step):
    router, dealer = Connection("ROUTER", server=True), Connection("DEALER", server=False)
    pump(router, dealer, step)
    assert router.ready and dealer.ready and router.version == (3, 1) and router.peer_type == "DEALER"
    long_body = b"x" * 70000
    data = dealer.encode([b"Ready for events"]) + dealer.encode([b"", long_body])
    messages = []
    for i in range(0, len(data), step or len(data)):
        messages += router.receive(data[i:i + (step or len(data))])
    assert messages == [[b"Ready for events"], [b"", long_body]]
    assert dealer.receive(router.encode([b"No more events"])) == [[b"No more events"]]


def test_ping_is_answered_and_other_commands_ignored():
    router, dealer = Connection("ROUTER", server=True), Connection("DEALER", server=False)
    pump(router, dealer)
    assert router.receive(command(b"PING", b"\x00\x0aabc") + command(b"SUBSCRIBE", b"x")) == []
    assert router.outgoing() == command(b"PONG", b"abc")
    with pytest.raises(ZmtpError):
        router.receive(command(b"ERROR", b"\x03bye"))


def test_zmtp2_peer_gets_zmtp2():
    router = Connection("ROUTER", server=True)
    assert router.outgoing() == b"\xff" + b"\x00" * 7 + b"\x01\x7f\x03"
    router.receive(b"\xff" + b"\x00" * 7 + b"\x01\x7f" + b"\x01")  # signature, revision 1
    assert router.outgoing() == b"\x06"  # our socket type (ROUTER)
    router.receive(b"\x05")  # DEALER
    assert router.outgoing() == b"\x00\x00"  # our empty identity
    assert router.receive(b"\x00\x00" + b"\x01\x00" + b"\x00\x05hello") == [[b"", b"hello"]]
    assert router.ready and router.version == (2, 0)
    assert router.encode([b"a" * 300]) == b"\x02" + (300).to_bytes(8, "big") + b"a" * 300


@pytest.mark.parametrize("octets, why", [
    (b"\x01\x00", "ZMTP/1.0"),
    (b"\xff" + b"\x00" * 8 + b"\x7e", "ZMTP/1.0"),
    (b"\xff" + b"\x00" * 7 + b"\x01\x7f\x00", "revision"),
    (b"\xff" + b"\x00" * 7 + b"\x01\x7f\x03\x01" + b"PLAIN".ljust(20, b"\0") + b"\x00" * 32, "mechanism"),
    (b"\xff" + b"\x00" * 7 + b"\x01\x7f\x01\x01", "PUB"),  # ZMTP/2.0 PUB
])
def test_refusals(octets, why):
    router = Connection("ROUTER", server=True)
    with pytest.raises(ZmtpError, match=why):
        router.receive(octets)


def test_limits_and_reserved_flags():
    router, dealer = Connection("ROUTER", server=True, max_message=1000), Connection("DEALER", server=False)
    pump(router, dealer)
    with pytest.raises(ZmtpError, match="limit"):
        router.receive(b"\x02" + (1001).to_bytes(8, "big"))
    router, dealer = Connection("ROUTER", server=True), Connection("DEALER", server=False)
    pump(router, dealer)
    with pytest.raises(ZmtpError, match="reserved"):
        router.receive(b"\x80\x00")
    router, dealer = Connection("ROUTER", server=True), Connection("DEALER", server=False)
    pump(router, dealer)
    with pytest.raises(ZmtpError, match="too large"):
        router.receive(encode_frames([b"x"] * 17 + [b"end"]))


def test_ready_metadata():
    props = parse_properties(b"\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x00")
    assert props == {"socket-type": b"DEALER", "identity": b""}
    with pytest.raises(ZmtpError):
        parse_properties(b"\x0bSocket-Type\x00\x00\x00\x09DEALER")
