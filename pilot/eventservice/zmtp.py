"""ZMTP over a Unix socket, written with the standard library: what the event-range channel needs.

The pilot's end of the event-service channel is a ZeroMQ ROUTER bound on ``ipc:///tmp/zmq_<name>``
(yampl's "local" context); AthenaMP's end is a DEALER. When pyzmq is not importable the pilot
speaks the wire protocol itself, through this module:

* ZMTP/3.1 (rfc.zeromq.org 37/ZMTP, also accepting 3.0 peers) with the NULL security mechanism:
  64-octet greeting, READY command with the ``Socket-Type`` property, PING answered with PONG;
* ZMTP/2.0 (rfc.zeromq.org 15/ZMTP) for peers built on libzmq 3.x (yampl 1.x): the version is
  detected as the specification's "Backwards Interoperability" section describes (send the
  signature and major version 3, read the peer's; a peer with revision 1 or 2 gets the socket
  type and an empty identity and ZMTP/2.0 framing); ZMTP/1.0 peers are refused;
* frames of at most ``max_message`` octets (longer ones close the connection: the payload side is
  not trusted).

:class:`Connection` is the protocol state machine without I/O (bytes in, messages and bytes out);
:class:`StdlibRouter` drives connections of a listening socket with a selector (epoll); :class:`DealerClient`
is a blocking DEALER for payloads and tests. This file imports nothing from the pilot, so a payload
may run it from a copy.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import stat
from typing import Dict, List, Optional, Tuple

SIGNATURE = b"\xff" + b"\x00" * 7 + b"\x01" + b"\x7f"  # padding = identity length + 1, for 1.0-era detection
MAJOR = 3
MINOR = 1
MECHANISM = b"NULL"
#: ZMTP/2.0 socket-type octets (15/ZMTP)
V2_TYPES = {"PAIR": 0, "PUB": 1, "SUB": 2, "REQ": 3, "REP": 4, "DEALER": 5, "ROUTER": 6, "PULL": 7, "PUSH": 8}
#: which peer types each socket type accepts (37/ZMTP "The Socket-Type Property")
COMPATIBLE = {"ROUTER": ("REQ", "DEALER", "ROUTER"), "DEALER": ("REP", "DEALER", "ROUTER")}
MORE, LONG, COMMAND = 0x01, 0x02, 0x04
MAX_MESSAGE = 1 << 20
MAX_FRAMES = 16
MAX_CONNECTIONS = 256


class ZmtpError(Exception):
    """The peer broke the protocol (or asked for something this implementation does not do)."""


def _frame(body: bytes, flags: int = 0) -> bytes:
    if len(body) > 255:
        return bytes([flags | LONG]) + len(body).to_bytes(8, "big") + body
    return bytes([flags, len(body)]) + body


def encode_frames(frames: List[bytes]) -> bytes:
    """One message (a list of frames) in ZMTP framing (the same octets for 2.0 and 3.x)."""
    out = bytearray()
    for index, body in enumerate(frames):
        out += _frame(bytes(body), MORE if index < len(frames) - 1 else 0)
    return bytes(out)


def command(name: bytes, data: bytes = b"") -> bytes:
    """A ZMTP/3 command frame."""
    return _frame(bytes([len(name)]) + name + data, COMMAND)


def ready_command(socket_type: str) -> bytes:
    """READY with the Socket-Type property."""
    name, value = b"Socket-Type", socket_type.encode()
    return command(b"READY", bytes([len(name)]) + name + len(value).to_bytes(4, "big") + value)


def parse_properties(data: bytes) -> Dict[str, bytes]:
    """The metadata of a READY command (names lower-cased)."""
    props, pos = {}, 0
    while pos < len(data):
        size = data[pos]
        name = data[pos + 1:pos + 1 + size]
        pos += 1 + size
        if size == 0 or pos + 4 > len(data):
            raise ZmtpError("malformed READY metadata")
        length = int.from_bytes(data[pos:pos + 4], "big")
        pos += 4
        if pos + length > len(data):
            raise ZmtpError("malformed READY metadata")
        props[name.decode("ascii", "replace").lower()] = data[pos:pos + length]
        pos += length
    return props


class Connection:
    """One ZMTP connection's protocol state, without I/O.

    ``receive(data)`` takes octets read from the socket and returns the complete messages (lists of
    frames) they finished; ``outgoing()`` returns the octets to write (greeting, READY, PONG).
    ``encode(frames)`` frames an application message once ``ready`` is true.
    """

    def __init__(self, socket_type: str, server: bool, max_message: int = MAX_MESSAGE) -> None:
        if socket_type not in COMPATIBLE:
            raise ValueError(f"unsupported socket type {socket_type}")
        self.socket_type = socket_type
        self.server = server
        self.max_message = max_message
        self.version: Tuple[int, int] = (0, 0)
        self.peer_type = ""
        self.peer_identity = b""
        self.ready = False
        self._state = "signature"
        self._in = bytearray()
        self._out = bytearray(SIGNATURE + bytes([MAJOR]))
        self._frames: List[bytes] = []
        self._size = 0

    def outgoing(self) -> bytes:
        data, self._out = bytes(self._out), bytearray()
        return data

    def encode(self, frames: List[bytes]) -> bytes:
        if not self.ready:
            raise ZmtpError("handshake not complete")
        return encode_frames(frames)

    def receive(self, data: bytes) -> List[List[bytes]]:
        self._in += data
        messages: List[List[bytes]] = []
        while self._step(messages):
            pass
        return messages

    # -------------------------------------------------------------- states
    def _take(self, count: int) -> Optional[bytes]:
        if len(self._in) < count:
            return None
        data = bytes(self._in[:count])
        del self._in[:count]
        return data

    def _step(self, messages: List[List[bytes]]) -> bool:
        state = self._state
        if state == "signature":
            if self._in[:1] and self._in[0] != 0xFF:
                raise ZmtpError("ZMTP/1.0 peer (not supported)")
            data = self._take(10)
            if data is None:
                return False
            if data[0] != 0xFF or not data[9] & 0x01:
                raise ZmtpError("ZMTP/1.0 peer (not supported)")
            self._state = "major"
            return True
        if state == "major":
            data = self._take(1)
            if data is None:
                return False
            major = data[0]
            if major >= 3:
                self._out += bytes([MINOR]) + MECHANISM.ljust(20, b"\0") + b"\0" + b"\0" * 31
                self._state = "greeting3"
            elif major in (1, 2):
                self.version = (2, 0)
                self._out += bytes([V2_TYPES[self.socket_type]])
                self._state = "type2"
            else:
                raise ZmtpError(f"unknown ZMTP revision {major}")
            return True
        if state == "greeting3":
            data = self._take(53)
            if data is None:
                return False
            self.version = (3, min(data[0], MINOR))
            mechanism = data[1:21].rstrip(b"\0")
            if mechanism != MECHANISM:
                raise ZmtpError(f"security mechanism {mechanism.decode('ascii', 'replace')!r} (only NULL)")
            if not self.server:
                self._out += ready_command(self.socket_type)
            self._state = "ready3"
            return True
        if state == "type2":
            data = self._take(1)
            if data is None:
                return False
            names = {code: name for name, code in V2_TYPES.items()}
            self._check_peer_type(names.get(data[0], f"#{data[0]}"))
            self._out += b"\x00\x00"  # our identity: an empty final-short frame
            self._state = "identity2"
            return True
        frame = self._take_frame(command_bit=self.version[0] >= 3)
        if frame is None:
            return False
        flags, body = frame
        if state == "identity2":
            if flags & MORE:
                raise ZmtpError("multi-frame identity")
            self.peer_identity = body
            self.ready = True
            self._state = "traffic"
        elif state == "ready3":
            self._handshake_command(flags, body)
        elif flags & COMMAND:
            self._traffic_command(body)
        else:
            self._collect(flags, body, messages)
        return True

    def _take_frame(self, command_bit: bool) -> Optional[Tuple[int, bytes]]:
        if len(self._in) < 2:
            return None
        flags = self._in[0]
        if flags & (0xF8 if command_bit else 0xFC):
            raise ZmtpError(f"reserved frame flags set: {flags:#x}")
        if flags & COMMAND and flags & MORE:
            raise ZmtpError("command frame with MORE")
        header = 9 if flags & LONG else 2
        if len(self._in) < header:
            return None
        size = int.from_bytes(self._in[1:9], "big") if flags & LONG else self._in[1]
        if size > self.max_message:
            raise ZmtpError(f"frame of {size} octets (limit {self.max_message})")
        if len(self._in) < header + size:
            return None
        body = bytes(self._in[header:header + size])
        del self._in[:header + size]
        return flags, body

    def _handshake_command(self, flags: int, body: bytes) -> None:
        name, data = self._split_command(flags, body)
        if name == b"ERROR":
            raise ZmtpError(f"peer refused the connection: {data[1:1 + data[0]] if data else b''!r}")
        if name != b"READY":
            raise ZmtpError(f"expected READY, got {name!r}")
        props = parse_properties(data)
        self._check_peer_type(props.get("socket-type", b"").decode("ascii", "replace"))
        self.peer_identity = props.get("identity", b"")
        if self.server:
            self._out += ready_command(self.socket_type)
        self.ready = True
        self._state = "traffic"

    def _traffic_command(self, body: bytes) -> None:
        name, data = self._split_command(COMMAND, body)
        if name == b"PING":
            self._out += command(b"PONG", data[2:18])
        elif name == b"ERROR":
            raise ZmtpError("peer sent ERROR")
        # PONG, SUBSCRIBE, CANCEL ...: nothing to do on this channel

    @staticmethod
    def _split_command(flags: int, body: bytes) -> Tuple[bytes, bytes]:
        if not flags & COMMAND or not body or len(body) < 1 + body[0]:
            raise ZmtpError("malformed command frame")
        return body[1:1 + body[0]], body[1 + body[0]:]

    def _check_peer_type(self, peer_type: str) -> None:
        if peer_type not in COMPATIBLE[self.socket_type]:
            if self.version[0] >= 3:
                reason = b"invalid socket type"
                self._out += command(b"ERROR", bytes([len(reason)]) + reason)
            raise ZmtpError(f"a {peer_type or 'untyped'} peer cannot talk to a {self.socket_type}")
        self.peer_type = peer_type

    def _collect(self, flags: int, body: bytes, messages: List[List[bytes]]) -> None:
        self._frames.append(body)
        self._size += len(body)
        if self._size > self.max_message or len(self._frames) > MAX_FRAMES:
            raise ZmtpError("message too large")
        if not flags & MORE:
            messages.append(self._frames)
            self._frames, self._size = [], 0


def clear_stale_socket(path: str) -> None:
    """Remove ``path`` when it is a socket nobody listens on; raise OSError when it is live or not a socket."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(2)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    except OSError:
        raise
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"{path} is in use by a live listener")


class WakePipe:
    """A self-pipe that ends a router's poll early: :meth:`wake` from any thread, the rest from the polling one."""

    def __init__(self) -> None:
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)  # drain() never blocks, whether or not a wake-up is pending
        os.set_blocking(self._write_fd, False)

    def wake(self) -> None:
        try:
            os.write(self._write_fd, b"x")
        except OSError:
            pass  # a full pipe already wakes the poll; a closed one belongs to a closed router

    def drain(self) -> bool:
        """Take the pending wake-ups (so the next poll blocks again); True."""
        try:
            os.read(self.read_fd, 4096)
        except OSError:
            pass
        return True

    def close(self) -> None:
        for fd in (self.read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.read_fd = self._write_fd = -1


class _Peer:
    __slots__ = ("sock", "conn")

    def __init__(self, sock: socket.socket, conn: Connection) -> None:
        self.sock = sock
        self.conn = conn


class StdlibRouter:
    """A ROUTER bound on a Unix socket (``ROUTER_MANDATORY``: sending to an unknown peer fails).

    Single-threaded: :meth:`poll`, :meth:`send` and :meth:`close` belong to the thread that polls;
    :meth:`wake` may be called from any thread. Peers are connection numbers.
    """

    backend = "stdlib"

    def __init__(self, path: str, max_message: int = MAX_MESSAGE, send_timeout: float = 10.0) -> None:
        self.path = path
        self.max_message = max_message
        self.send_timeout = send_timeout
        self.errors: List[str] = []  # why connections were dropped (for logs and tests)
        self._peers: Dict[int, _Peer] = {}
        self._next = 0
        clear_stale_socket(path)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(path)
            self._listener.listen(64)
            self._listener.setblocking(False)
        except OSError:
            self._listener.close()
            raise
        self._wake = WakePipe()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, 0)
        self._selector.register(self._wake.read_fd, selectors.EVENT_READ, -1)

    @property
    def description(self) -> str:
        return "standard-library ZMTP 3.1/2.0"

    @property
    def open_peers(self) -> int:
        return len(self._peers)

    def wake(self) -> None:
        self._wake.wake()

    def poll(self, timeout: Optional[float] = None) -> Tuple[list, list, bool, int]:
        """Wait up to ``timeout``; return (messages as (peer, frames), closed peers, woken, ready sockets)."""
        ready = self._selector.select(timeout)
        messages: list = []
        closed: list = []
        woken = False
        for key, _ in ready:
            number = key.data
            if number == -1:
                woken = self._wake.drain()
            elif number == 0:
                self._accept()
            elif number in self._peers:
                if not self._read(number, messages):
                    self._drop(number)
                    closed.append(number)
        return messages, closed, woken, len(ready)

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        if len(self._peers) >= MAX_CONNECTIONS:
            self.errors.append("too many connections")
            sock.close()
            return
        sock.settimeout(self.send_timeout)
        conn = Connection("ROUTER", server=True, max_message=self.max_message)
        self._next += 1
        self._peers[self._next] = _Peer(sock, conn)
        self._selector.register(sock, selectors.EVENT_READ, self._next)
        if not self._flush(self._next):
            self._drop(self._next)

    def _read(self, number: int, messages: list) -> bool:
        peer = self._peers[number]
        try:
            data = peer.sock.recv(65536)
        except OSError:
            return False
        if not data:
            return False
        try:
            for frames in peer.conn.receive(data):
                messages.append((number, frames))
        except ZmtpError as exc:
            self.errors.append(str(exc))
            self._flush(number)
            return False
        return self._flush(number)

    def _flush(self, number: int) -> bool:
        peer = self._peers.get(number)
        if peer is None:
            return False
        data = peer.conn.outgoing()
        if data:
            try:
                peer.sock.sendall(data)
            except OSError:
                return False
        return True

    def _drop(self, number: int) -> None:
        peer = self._peers.pop(number, None)
        if peer is not None:
            try:
                self._selector.unregister(peer.sock)
            except (KeyError, ValueError):
                pass
            try:
                peer.sock.close()
            except OSError:
                pass

    def send(self, peer: object, frames: List[bytes]) -> bool:
        """Send one message to ``peer``; False when it is not connected (or the write failed)."""
        item = self._peers.get(peer) if isinstance(peer, int) else None
        if item is None or not item.conn.ready:
            return False
        try:
            item.sock.sendall(item.conn.encode(frames))
            return True
        except OSError:
            self._drop(int(peer))  # type: ignore[call-overload]  # peer: a connection number
            return False

    def close(self) -> None:
        for number in list(self._peers):
            self._drop(number)
        self._selector.close()
        try:
            self._listener.close()
        except OSError:
            pass
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self._wake.close()


class DealerClient:
    """A blocking DEALER that connects to ``path`` (an ``ipc://`` endpoint or a file path) on first use."""

    def __init__(self, path: str, timeout: Optional[float] = None, max_message: int = MAX_MESSAGE) -> None:
        self.path = path[len("ipc://"):] if path.startswith("ipc://") else path
        self.timeout = timeout
        self.max_message = max_message
        self.sock: Optional[socket.socket] = None
        self.conn: Optional[Connection] = None
        self._pending: List[List[bytes]] = []

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock, self.conn = sock, Connection("DEALER", server=False, max_message=self.max_message)
        while not self.conn.ready:
            self._exchange()

    def _exchange(self) -> None:
        assert self.sock is not None and self.conn is not None
        data = self.conn.outgoing()
        if data:
            self.sock.sendall(data)
        if self.conn.ready and self._pending:
            return
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the router closed the connection")
        self._pending.extend(self.conn.receive(chunk))
        data = self.conn.outgoing()
        if data:
            self.sock.sendall(data)

    def send(self, text: str) -> None:
        """Send one single-frame message (connecting first when needed)."""
        if self.sock is None:
            self._connect()
        assert self.sock is not None and self.conn is not None
        self.sock.sendall(self.conn.encode([text.encode("utf-8")]))

    def receive(self) -> str:
        """Block for the next message (its last frame, as text)."""
        if self.sock is None:
            self._connect()
        while not self._pending:
            self._exchange()
        return self._pending.pop(0)[-1].decode("utf-8", errors="replace")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = self.conn = None
        self._pending = []

    def __enter__(self) -> "DealerClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
