"""MessageThread: the pilot's end of the payload channel (see :mod:`pilot.eventservice.channel`).

The thread owns the channel's ROUTER (pyzmq's or the standard-library one): it blocks in the
router's poll (connections, messages and a wake-up pipe), puts every message on the message queue
as a :class:`~pilot.eventservice.channel.ChannelMessage` (a ``str`` that remembers its sender),
announces every closed connection with a :class:`PeerClosed` marker (so the ES process knows when
it has seen everything a finished payload sent), and performs the sends other threads ask for:
ZeroMQ sockets belong to one thread, so :meth:`MessageThread.send` hands the message over and waits
(bounded) for the outcome.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

from pilot.common.exception import MessageFailure
from pilot.util.guardedprocess import payload_user_ids
from pilot.eventservice.channel import (ChannelMessage, channel_name, decode, encode, endpoint, open_router,
                                        socket_path)

logger = logging.getLogger(__name__)

#: seconds a send may wait for the message thread
SEND_WAIT = 30.0


@dataclass(frozen=True)
class PeerClosed:
    """Queue marker: a payload connection closed (everything it sent is queued before this)."""

    peer: Any


@dataclass(frozen=True)
class Flushed:
    """Queue marker: everything the channel held when :meth:`MessageThread.flush` was called is queued."""


@dataclass
class _Outgoing:
    peer: Any
    frames: list
    done: threading.Event = field(default_factory=threading.Event)
    sent: bool = False


class MessageThread(threading.Thread):
    """Receive the payload's messages into ``message_queue``; send replies to it."""

    def __init__(self, message_queue: "queue.Queue", socket_name: Optional[str] = None, context: str = "local",
                 backend: Optional[str] = None, **kwargs: object) -> None:
        super().__init__(name="MessageThread", daemon=True)
        self._queue = message_queue
        self._socket_name = socket_name or channel_name()
        self.context = context  # yampl's context name; the channel is always yampl's "local" one
        self._stop_event = threading.Event()
        self._flush = threading.Event()
        self._outbox: "queue.Queue[_Outgoing]" = queue.Queue()
        self._last: tuple = (None, ())
        self.error: Optional[str] = None
        try:
            self._router: Any = open_router(self._socket_name, backend)
        except (OSError, ImportError, ValueError) as exc:
            raise MessageFailure(f"cannot open the event range channel {endpoint(self._socket_name)}: {exc}") from exc
        self.backend = self._router.backend
        self._share_with_payload_user()

    def _share_with_payload_user(self) -> None:
        """A root pilot runs its payload as ``[Payload] payload_user``: that uid must be able to connect.

        Connecting to a Unix socket needs write permission on its file, so the file goes to the payload's
        uid (mode 0755 as bound: nobody else but root may connect).
        """
        ids = payload_user_ids()
        if ids is None:
            return
        try:
            os.chown(self.socket_file, ids[0], ids[1], follow_symlinks=False)
        except OSError as exc:
            self.terminate()
            raise MessageFailure(f"cannot give the event range channel to uid {ids[0]}: {exc}") from exc
        logger.info("event range channel socket %s given to uid %d", self.socket_file, ids[0])

    def get_yampl_socket_name(self) -> str:
        """The channel name (Pilot 2 name of this method)."""
        return self._socket_name

    @property
    def socket_name(self) -> str:
        return self._socket_name

    @property
    def endpoint(self) -> str:
        return endpoint(self._socket_name)

    @property
    def socket_file(self) -> str:
        """The channel's socket file (``/tmp/zmq_<name>``), to be shared with a containerised payload."""
        return socket_path(self._socket_name)

    @property
    def open_peers(self) -> int:
        router = self._router
        return router.open_peers if router is not None else 0

    def send(self, message: str, peer: Any = None) -> None:
        """Send ``message`` to ``peer`` (default: the sender of the last message); MessageFailure if it cannot go."""
        if self._router is None or not self.is_alive():
            raise MessageFailure("the event range channel is closed")
        target, envelope = self._last if peer is None else (peer, getattr(message, "envelope", ()))
        if isinstance(peer, ChannelMessage):
            target, envelope = peer.peer, peer.envelope
        item = _Outgoing(target, list(envelope) + [encode(message)])
        logger.debug("to the payload (%s): %s", target, message[:300])
        if threading.current_thread() is self:
            self._deliver(item)
        else:
            self._outbox.put(item)
            self._router.wake()
            if not item.done.wait(SEND_WAIT):
                raise MessageFailure("the message thread did not send in time")
        if not item.sent:
            raise MessageFailure(f"cannot send to payload connection {target!r} (gone)")

    def reply(self, request: ChannelMessage, message: str) -> None:
        """Answer ``request`` on the connection (and envelope) it came from."""
        self.send(message, request)

    def flush(self) -> None:
        """Ask the thread to read everything pending (connections, messages, closes), then queue ``Flushed``."""
        self._flush.set()
        router = self._router
        if router is not None:
            router.wake()

    def stop(self) -> None:
        """Ask the thread to close the channel and end."""
        self._stop_event.set()
        router = self._router
        if router is not None:
            router.wake()

    def is_stopped(self) -> bool:
        return self._stop_event.is_set()

    def terminate(self) -> None:
        """Close the channel (called by the thread itself when it ends; before start by the owner)."""
        router, self._router = self._router, None
        if router is not None:
            logger.info("closing the event range channel %s", self.endpoint)
            router.close()
        while True:
            try:
                item = self._outbox.get_nowait()
            except queue.Empty:
                break
            item.done.set()

    def run(self) -> None:
        """Move messages from the channel to the queue and queued replies to the channel until stopped."""
        try:
            while not self._stop_event.is_set() and self._router is not None:
                self._forward(self._router.poll())
                self._send_pending()
                if self._flush.is_set():
                    self._flush.clear()
                    while self._forward(self._router.poll(0)):
                        pass
                    self._queue.put(Flushed())
        except Exception as exc:  # a broken channel ends the thread; the ES process notices
            self.error = f"{type(exc).__name__}: {exc}"
            logger.exception("the message thread failed")
        finally:
            self.terminate()
        logger.info("message thread finished")

    def _send_pending(self) -> None:
        while True:
            try:
                item = self._outbox.get_nowait()
            except queue.Empty:
                return
            self._deliver(item)

    def _deliver(self, item: _Outgoing) -> None:
        try:
            item.sent = bool(self._router is not None and self._router.send(item.peer, item.frames))
        finally:
            item.done.set()

    def _forward(self, polled: tuple) -> int:
        """Queue what one poll returned; how many sockets were ready."""
        messages, closed, _, ready = polled
        for peer, frames in messages:
            text = ChannelMessage(decode(frames[-1]), peer, frames[:-1])
            self._last = (peer, text.envelope)
            logger.debug("from the payload (%s): %s", peer, text[:300])
            self._queue.put(text)
        for peer in closed:
            self._queue.put(PeerClosed(peer))
        return ready
