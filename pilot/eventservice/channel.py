"""The payload channel of the event service: messages between the pilot and the payload.

Pilot 2 used a yampl server socket named ``EventService_EventRanges_<pid>`` (context ``local``).
No yampl binding can be installed from PyPI, so the pilot offers the same messages over a local
socket instead:

* type ``AF_UNIX``/``SOCK_SEQPACKET``: connection-oriented, and every ``send`` is one message, as
  with yampl, so no framing is needed;
* the server listens on the *abstract* address ``\\0EventService_EventRanges_<pid>`` (no file, no
  path-length limit) and, when the job dir's path is short enough, also on the file
  ``<job dir>/EventService_EventRanges_<pid>`` (for payloads in a container with its own network
  namespace, which do not see abstract sockets but do see the job dir);
* the payload learns the name from ``PILOT_EVENTRANGECHANNEL`` (and the file from
  ``PILOT_EVENTRANGECHANNEL_PATH`` when one exists).

How a payload (AthenaMP-style or any other) talks to the pilot::

    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect("\\0" + os.environ["PILOT_EVENTRANGECHANNEL"])   # or PILOT_EVENTRANGECHANNEL_PATH
    s.send(b"Ready for events")
    reply = s.recv(1 << 20).decode()        # a JSON list of ranges, or "No more events"
    ...                                      # process each range, write its output file
    s.send(b"/abs/path/out.root,ID:<rangeID>,CPU:12,WALL:15")   # or b"ERR_<KIND> <rangeID>: text"
    # ask again; after "No more events" exit (the pilot waits a bounded time, then stops the payload)

Several connections may be open at once (one per AthenaMP worker); each request is answered on the
connection it came from. :class:`ChannelClient` below is the client side in Python.
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading
from typing import Optional

CHANNEL_PREFIX = "EventService_EventRanges_"
ENV_CHANNEL = "PILOT_EVENTRANGECHANNEL"
ENV_CHANNEL_PATH = "PILOT_EVENTRANGECHANNEL_PATH"
READY = "Ready for events"
NO_MORE_EVENTS = "No more events"
#: the largest message either side sends (a JSON list of ranges is far smaller)
MAX_MESSAGE = 1 << 20
#: sun_path holds 108 bytes including the terminating NUL
MAX_PATH = 107


def channel_name(pid: Optional[int] = None) -> str:
    """``EventService_EventRanges_<pid>`` (the pilot's pid by default)."""
    return f"{CHANNEL_PREFIX}{pid if pid is not None else os.getpid()}"


def abstract_address(name: str) -> str:
    """The abstract-namespace address of a channel name."""
    return "\0" + name


class ChannelMessage(str):
    """A message text that remembers the connection it came from (``peer``), so the reply goes back there."""

    peer: int = -1

    def __new__(cls, text: str, peer: int = -1) -> "ChannelMessage":
        obj = super().__new__(cls, text)
        obj.peer = peer
        return obj


class ChannelServer:
    """The listening side: accepts payload connections, receives and sends whole messages.

    Not a thread: :class:`pilot.eventservice.esprocess.esmessage.MessageThread` drives it with
    :meth:`poll`. ``send`` may be called from any thread.
    """

    def __init__(self, name: str, directory: Optional[str] = None, backlog: int = 64) -> None:
        self.name = name
        self.path = ""
        self._listeners: list = []
        self._peers: dict = {}  # connection id -> socket
        self._next_id = 0
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        try:
            self._listeners.append(self._listen(abstract_address(name), backlog))
            if directory and os.path.isdir(directory):
                path = os.path.join(os.path.abspath(directory), name)
                if len(path.encode()) <= MAX_PATH:
                    if os.path.exists(path):
                        os.unlink(path)
                    self._listeners.append(self._listen(path, backlog))
                    self.path = path
        except OSError:
            self.close()
            raise

    @staticmethod
    def _listen(address: str, backlog: int) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.bind(address)
            sock.listen(backlog)
        except OSError:
            sock.close()
            raise
        return sock

    @property
    def open_peers(self) -> int:
        """How many payload connections are open."""
        with self._lock:
            return len(self._peers)

    def wake(self) -> None:
        """Interrupt a blocking :meth:`poll` (used to stop the reading thread)."""
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def poll(self, timeout: Optional[float] = None) -> tuple:
        """Wait for activity; return (messages, closed peers, woken, number of ready sockets).

        ``messages`` are :class:`ChannelMessage` objects in arrival order per connection.
        """
        with self._lock:
            peers = dict(self._peers)
        ids = {sock: peer for peer, sock in peers.items()}
        readable, _, _ = select.select(self._listeners + list(peers.values()) + [self._wake_r], [], [], timeout)
        messages, closed, woken = [], [], False
        for item in readable:
            if item == self._wake_r:
                os.read(self._wake_r, 4096)
                woken = True
            elif item in self._listeners:
                self._accept(item)
            else:
                text = self._receive(item)
                if text is None:
                    closed.append(self._drop(ids[item]))
                else:
                    messages.append(ChannelMessage(text, ids[item]))
        return messages, closed, woken, len(readable)

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with self._lock:
            self._next_id += 1
            self._peers[self._next_id] = conn

    @staticmethod
    def _receive(conn: socket.socket) -> Optional[str]:
        try:
            data = conn.recv(MAX_MESSAGE)
        except OSError:
            return None
        if not data:
            return None
        return data.decode("utf-8", errors="replace").rstrip("\0")

    def _drop(self, peer: int) -> int:
        with self._lock:
            conn = self._peers.pop(peer, None)
        if conn is not None:
            conn.close()
        return peer

    def send(self, peer: int, text: str) -> bool:
        """Send one message to connection ``peer``; False when that connection is gone."""
        with self._lock:
            conn = self._peers.get(peer)
        if conn is None:
            return False
        try:
            conn.sendall(text.encode("utf-8"))
            return True
        except OSError:
            return False

    def close(self) -> None:
        """Close every socket and remove the socket file."""
        with self._lock:
            peers, self._peers = list(self._peers.values()), {}
        for sock in peers + self._listeners:
            try:
                sock.close()
            except OSError:
                pass
        self._listeners = []
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1


class ChannelClient:
    """The payload side of the channel (used by the test payload; a model for other payloads)."""

    def __init__(self, name: Optional[str] = None, path: Optional[str] = None, timeout: Optional[float] = None) -> None:
        name = name if name is not None else os.environ.get(ENV_CHANNEL, "")
        path = path if path is not None else os.environ.get(ENV_CHANNEL_PATH, "")
        if not name and not path:
            raise ValueError(f"no event range channel: set {ENV_CHANNEL}")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(abstract_address(name) if name else path)
        except OSError:
            if not path:
                self.sock.close()
                raise
            self.sock.connect(path)

    def send(self, text: str) -> None:
        """Send one message."""
        self.sock.sendall(text.encode("utf-8"))

    def receive(self) -> str:
        """Block for the next message (raises ``ConnectionError`` when the pilot closed the channel)."""
        data = self.sock.recv(MAX_MESSAGE)
        if not data:
            raise ConnectionError("the pilot closed the event range channel")
        return data.decode("utf-8", errors="replace")

    def request_ranges(self) -> Optional[list]:
        """Send ``Ready for events``; return the ranges, or None for ``No more events``."""
        self.send(READY)
        reply = self.receive().strip()
        if reply.startswith(NO_MORE_EVENTS):
            return None
        ranges = json.loads(reply)
        return ranges if isinstance(ranges, list) else [ranges]

    def report_output(self, path: str, range_id: str, cpu: float, wall: float) -> None:
        """``<path>,ID:<rangeID>,CPU:<n>,WALL:<n>``."""
        self.send(f"{path},ID:{range_id},CPU:{int(round(cpu))},WALL:{int(round(wall))}")

    def report_error(self, range_id: str, text: str, kind: str = "ERR_TE_RANGE") -> None:
        """``ERR_<KIND> <rangeID>: <text>``."""
        self.send(f"{kind} {range_id}: {text}")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "ChannelClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
