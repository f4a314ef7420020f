"""The payload channel over real local sockets: connections, message boundaries, reply routing."""

import os
import queue
import socket
import threading

import pytest

from pilot.common.exception import MessageFailure
from pilot.eventservice.channel import (NO_MORE_EVENTS, READY, ChannelClient, ChannelServer, abstract_address,
                                        channel_name)
from pilot.eventservice.esprocess.esmessage import Flushed, MessageThread, PeerClosed


def unique(tag):
    return f"{channel_name()}_{tag}_{threading.get_ident()}"


def test_abstract_and_file_addresses(tmp_path):
    name = f"ES_{os.getpid()}_{threading.get_ident() % 1000}"  # pytest's tmp_path is long already
    server = ChannelServer(name, directory=str(tmp_path))
    try:
        assert server.path == str(tmp_path / name) and os.path.exists(server.path)
        by_name = ChannelClient(name=name, path="")
        by_path = ChannelClient(name="", path=server.path)
        by_name.send("one")
        by_path.send("two")
        got = []
        while len(got) < 2:
            messages, _, _, _ = server.poll(5)
            got += messages
        assert sorted(got) == ["one", "two"] and len({m.peer for m in got}) == 2
        by_name.close()
        by_path.close()
    finally:
        server.close()
    assert not os.path.exists(str(tmp_path / name))


def test_long_directory_uses_the_abstract_name_only(tmp_path):
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    server = ChannelServer(unique("long"), directory=str(deep))
    try:
        assert server.path == ""
    finally:
        server.close()


def test_name_in_use_is_an_error():
    name = unique("busy")
    server = ChannelServer(name)
    try:
        with pytest.raises(OSError):
            ChannelServer(name)
        with pytest.raises(MessageFailure):
            MessageThread(queue.Queue(), name)
    finally:
        server.close()


def test_message_thread_routes_replies_and_reports_closes():
    inbox = queue.Queue()
    thread = MessageThread(inbox, unique("route"))
    thread.start()
    try:
        clients = [ChannelClient(name=thread.get_yampl_socket_name()) for _ in range(3)]
        for i, client in enumerate(clients):
            client.send(f"{READY} {i}")
        received = [inbox.get(timeout=5) for _ in clients]
        for message in received:
            thread.send(f"reply to {message}", peer=message.peer)
        for i, client in enumerate(clients):
            assert client.receive() == f"reply to {READY} {i}"
        # a long message stays one message
        big = "x" * 100000  # far more than a list of ranges; SEQPACKET keeps it whole
        clients[0].send(big)
        assert inbox.get(timeout=5) == big
        clients[1].send("last words")
        clients[1].close()
        thread.flush()
        items = []
        while not items or not isinstance(items[-1], Flushed):
            items.append(inbox.get(timeout=5))
        assert items[0] == "last words" and isinstance(items[1], PeerClosed)
        assert thread.open_peers == 2
        with pytest.raises(MessageFailure):
            thread.send("to nobody", peer=items[1].peer)
        for client in (clients[0], clients[2]):
            client.close()
    finally:
        thread.stop()
        thread.join(5)
    assert not thread.is_alive()
    with pytest.raises(OSError):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            probe.connect(abstract_address(thread.get_yampl_socket_name()))
        finally:
            probe.close()


def test_client_request_helpers():
    inbox = queue.Queue()
    thread = MessageThread(inbox, unique("client"))
    thread.start()
    try:
        client = ChannelClient(name=thread.socket_name, timeout=5)

        def serve():
            message = inbox.get(timeout=5)
            thread.send('[{"eventRangeID": "r1"}]', peer=message.peer)
            message = inbox.get(timeout=5)
            thread.send(NO_MORE_EVENTS, peer=message.peer)

        server = threading.Thread(target=serve)
        server.start()
        assert client.request_ranges() == [{"eventRangeID": "r1"}]
        assert client.request_ranges() is None
        server.join(5)
        client.report_output("/tmp/o", "r1", 1.4, 2.6)
        client.report_error("r2", "broken", kind="ERR_TE_FATAL")
        assert inbox.get(timeout=5) == "/tmp/o,ID:r1,CPU:1,WALL:3"
        assert inbox.get(timeout=5) == "ERR_TE_FATAL r2: broken"
        client.close()
    finally:
        thread.stop()
        thread.join(5)


def test_client_without_a_channel(monkeypatch):
    monkeypatch.delenv("PILOT_EVENTRANGECHANNEL", raising=False)
    monkeypatch.delenv("PILOT_EVENTRANGECHANNEL_PATH", raising=False)
    with pytest.raises(ValueError):
        ChannelClient()
