"""The event-range channel's ROUTER through pyzmq (the ``eventservice`` extra), when it is importable.

Same contract as :class:`pilot.eventservice.zmtp.StdlibRouter`: ``poll(timeout)`` returns
(messages as (peer, frames), closed peers, woken, ready count), ``send(peer, frames)`` is False when the peer is
gone (``ROUTER_MANDATORY``), ``wake()`` may be called from any thread, the rest belongs to the
polling thread (ZeroMQ sockets are not thread-safe). Peers are ZeroMQ routing ids. Connections and
disconnections come from the socket monitor, so ``open_peers`` counts live connections.
"""

from __future__ import annotations

import os
from typing import List, Optional, Tuple

import zmq
from zmq.utils.monitor import parse_monitor_message

from .zmtp import MAX_MESSAGE, WakePipe, clear_stale_socket


class PyZmqRouter:
    """A pyzmq ROUTER on ``ipc://<path>`` with ROUTER_MANDATORY, no linger and a message size limit."""

    backend = "pyzmq"

    def __init__(self, path: str, max_message: int = MAX_MESSAGE) -> None:
        self.path = path
        self.errors: List[str] = []
        self._open = 0
        clear_stale_socket(path)
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._monitor = None
        self._wake = WakePipe()
        try:
            self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            self._sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a payload reconnecting under its old identity is served
            self._sock.setsockopt(zmq.LINGER, 0)
            self._sock.setsockopt(zmq.MAXMSGSIZE, max_message)
            self._monitor = self._sock.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
            self._sock.bind(f"ipc://{path}")
        except zmq.ZMQError as exc:
            self.close()
            raise OSError(exc.errno, str(exc)) from exc
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self._poller.register(self._wake.read_fd, zmq.POLLIN)

    @property
    def description(self) -> str:
        return f"pyzmq {zmq.pyzmq_version()}, libzmq {zmq.zmq_version()}"

    @property
    def open_peers(self) -> int:
        return max(0, self._open)

    def wake(self) -> None:
        self._wake.wake()

    def poll(self, timeout: Optional[float] = None) -> Tuple[list, list, bool, int]:
        ready = dict(self._poller.poll(None if timeout is None else max(0, int(timeout * 1000))))
        woken = self._wake.read_fd in ready and self._wake.drain()
        messages: list = []
        self._drain(messages)
        closed: list = []
        monitor = self._monitor
        while monitor is not None:  # None once closed
            try:
                event = parse_monitor_message(monitor.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
            if event["event"] == zmq.EVENT_ACCEPTED:
                self._open += 1
            elif event["event"] == zmq.EVENT_DISCONNECTED:
                self._open -= 1
                closed.append(None)
        if closed:
            self._drain(messages)  # what the closed connections sent before going is delivered first
        return messages, closed, woken, len(ready)

    def _drain(self, messages: list) -> None:
        while True:
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) >= 2:
                messages.append((frames[0], frames[1:]))

    def send(self, peer: object, frames: List[bytes]) -> bool:
        if not isinstance(peer, bytes):
            return False
        try:
            self._sock.send_multipart([peer] + list(frames), zmq.NOBLOCK)
            return True
        except zmq.ZMQError as exc:
            self.errors.append(str(exc))
            return False

    def close(self) -> None:
        if self._monitor is not None:
            try:
                self._sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self._monitor.close(linger=0)
            self._monitor = None
        self._sock.close(linger=0)
        self._ctx.term()
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self._wake.close()
