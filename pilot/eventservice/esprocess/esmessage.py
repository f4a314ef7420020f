"""MessageThread: the pilot's end of the payload channel (see :mod:`pilot.eventservice.channel`).

The thread blocks in ``select`` on the listening sockets, the payload connections and a wake-up
pipe; every message it receives goes to the message queue as a
:class:`~pilot.eventservice.channel.ChannelMessage` (a ``str`` that remembers its connection), and
every connection that closes is announced with a :class:`PeerClosed` marker, so the ES process
knows when it has seen everything a finished payload sent.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Optional

from pilot.common.exception import MessageFailure
from pilot.eventservice.channel import ChannelServer, channel_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeerClosed:
    """Queue marker: payload connection ``peer`` was closed (everything it sent is queued before this)."""

    peer: int


@dataclass(frozen=True)
class Flushed:
    """Queue marker: everything the channel held when :meth:`MessageThread.flush` was called is queued."""


class MessageThread(threading.Thread):
    """Receive the payload's messages into ``message_queue``; send replies to it."""

    def __init__(self, message_queue: "queue.Queue", socket_name: Optional[str] = None, context: str = "local",
                 directory: Optional[str] = None, **kwargs: object) -> None:
        super().__init__(name="MessageThread", daemon=True)
        self._queue = message_queue
        self._socket_name = socket_name or channel_name()
        self.context = context  # kept for the yampl-era signature; the channel is always node-local
        self._stop_event = threading.Event()
        self._flush = threading.Event()
        self._last_peer = -1
        self.error: Optional[str] = None
        try:
            self._server: Optional[ChannelServer] = ChannelServer(self._socket_name, directory=directory)
        except OSError as exc:
            raise MessageFailure(f"cannot open the event range channel {self._socket_name}: {exc}") from exc
        logger.info("event range channel %s open%s", self._socket_name,
                    f" (also {self._server.path})" if self._server.path else "")

    def get_yampl_socket_name(self) -> str:
        """The channel name (Pilot 2 name of this method)."""
        return self._socket_name

    @property
    def socket_name(self) -> str:
        return self._socket_name

    @property
    def socket_path(self) -> str:
        """The file the channel also listens on ('' when the job dir's path was too long)."""
        return self._server.path if self._server is not None else ""

    @property
    def open_peers(self) -> int:
        return self._server.open_peers if self._server is not None else 0

    def send(self, message: str, peer: Optional[int] = None) -> None:
        """Send ``message`` to connection ``peer`` (default: the one that sent the last message)."""
        server = self._server
        if server is None:
            raise MessageFailure("the event range channel is closed")
        target = self._last_peer if peer is None or peer < 0 else peer
        logger.debug("to the payload (connection %s): %s", target, message[:300])
        if not server.send(target, message):
            raise MessageFailure(f"cannot send to payload connection {target} (closed)")

    def flush(self) -> None:
        """Ask the thread to read everything pending (connections, messages, closes), then queue ``Flushed``."""
        self._flush.set()
        if self._server is not None:
            self._server.wake()

    def stop(self) -> None:
        """Ask the thread to close the channel and end."""
        self._stop_event.set()
        if self._server is not None:
            self._server.wake()

    def is_stopped(self) -> bool:
        return self._stop_event.is_set()

    def terminate(self) -> None:
        """Close the channel (called by the thread itself when it ends)."""
        server, self._server = self._server, None
        if server is not None:
            logger.info("closing the event range channel %s", self._socket_name)
            server.close()

    def run(self) -> None:
        """Move messages from the channel to the queue until stopped."""
        try:
            while not self._stop_event.is_set() and self._server is not None:
                self._forward(self._server.poll())
                if self._flush.is_set():
                    self._flush.clear()
                    while self._server is not None and self._forward(self._server.poll(0)):
                        pass
                    self._queue.put(Flushed())
        except Exception as exc:  # a broken channel ends the thread; the ES process notices
            self.error = f"{type(exc).__name__}: {exc}"
            logger.exception("the message thread failed")
        finally:
            self.terminate()
        logger.info("message thread finished")

    def _forward(self, polled: tuple) -> int:
        """Queue what one poll returned; the number of sockets that were ready."""
        messages, closed, _, ready = polled
        for message in messages:
            self._last_peer = message.peer
            logger.debug("from the payload (connection %s): %s", message.peer, message[:300])
            self._queue.put(message)
        for peer in closed:
            self._queue.put(PeerClosed(peer))
        return ready
