"""The event-service payload channel: yampl's "local" context, i.e. a ZeroMQ ROUTER on ``ipc:///tmp/zmq_<name>``.

Pilot 2 served AthenaMP through yampl (``ServerSocket(name, "local")``). On the wire that is ZeroMQ
over a Unix-domain socket at ``/tmp/zmq_<name>``: the pilot's ROUTER binds (``ROUTER_MANDATORY``)
and answers the peer that sent the last message; AthenaMP's DEALER connects on its first send. One
message is one frame of raw bytes (UTF-8 text), never with a trailing NUL (AthenaMP compares
``No more events`` exactly); a trailing NUL on receipt is stripped.

The name is ``EventService_EventRanges_<pilot pid>``. The ROUTER is pyzmq's when pyzmq is
importable (``pip install pilot[eventservice]``), else the standard-library ZMTP implementation of
:mod:`pilot.eventservice.zmtp`. ``[Payload] es_channel`` (or ``PILOT_ES_CHANNEL``) forces one:
``auto`` (default), ``pyzmq`` or ``stdlib``; the choice is logged.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

from pilot.util.config import config

from .zmtp import MAX_MESSAGE, StdlibRouter  # noqa: F401  (MAX_MESSAGE is part of this module's interface)

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "EventService_EventRanges_"
ENV_CHANNEL = "PILOT_EVENTRANGECHANNEL"
ENV_BACKEND = "PILOT_ES_CHANNEL"
READY = "Ready for events"
NO_MORE_EVENTS = "No more events"
SOCKET_DIR = "/tmp"
BACKENDS = ("auto", "pyzmq", "stdlib")
#: sun_path holds 108 octets including the terminating NUL
MAX_PATH = 107


def channel_name(pid: Optional[int] = None) -> str:
    """``EventService_EventRanges_<pid>`` (the pilot's pid by default)."""
    return f"{CHANNEL_PREFIX}{pid if pid is not None else os.getpid()}"


def socket_path(name: str) -> str:
    """The file of a yampl "local" channel: ``/tmp/zmq_<name>``."""
    return os.path.join(SOCKET_DIR, f"zmq_{name}")


def endpoint(name: str) -> str:
    """The ZeroMQ endpoint of a channel name: ``ipc:///tmp/zmq_<name>``."""
    return f"ipc://{socket_path(name)}"


def decode(frame: bytes) -> str:
    """A received frame as text, one trailing NUL (added by some yampl bindings) removed."""
    text = bytes(frame).decode("utf-8", errors="replace")
    return text[:-1] if text.endswith("\0") else text


def encode(text: str) -> bytes:
    """A message to send: UTF-8, never ending with a NUL."""
    return text.rstrip("\0").encode("utf-8")


class ChannelMessage(str):
    """A message text that remembers its sender (``peer``) and the frames before it (``envelope``)."""

    peer: Any = None
    envelope: tuple = ()

    def __new__(cls, text: str, peer: Any = None, envelope: tuple = ()) -> "ChannelMessage":
        obj = super().__new__(cls, text)
        obj.peer = peer
        obj.envelope = tuple(envelope)
        return obj


def requested_backend(backend: Optional[str] = None) -> str:
    """The backend asked for: the argument, else ``PILOT_ES_CHANNEL``, else ``[Payload] es_channel``, else auto."""
    value = backend or os.environ.get(ENV_BACKEND) or config.Payload.get("es_channel", "auto") or "auto"
    value = str(value).strip().lower()
    if value not in BACKENDS:
        raise ValueError(f"unknown event-range channel backend {value!r} (one of {', '.join(BACKENDS)})")
    return value


def pyzmq_available() -> bool:
    try:
        import zmq  # noqa: F401
    except ImportError:
        return False
    return True


def open_router(name: str, backend: Optional[str] = None) -> Any:
    """Bind the channel's ROUTER for ``name`` with the chosen backend; log which one it is.

    Raises ``OSError`` when the socket cannot be bound (a live listener holds it, the path is not a
    socket, ...) and ``ImportError`` when pyzmq is asked for but missing.
    """
    path = socket_path(name)
    if len(path.encode()) > MAX_PATH:
        raise OSError(f"channel socket path too long: {path}")
    wanted = requested_backend(backend)
    if wanted == "pyzmq" and not pyzmq_available():
        raise ImportError("pyzmq was asked for (es_channel) but cannot be imported")
    if wanted == "pyzmq" or (wanted == "auto" and pyzmq_available()):
        from .zmqrouter import PyZmqRouter

        router: Any = PyZmqRouter(path)
    else:
        router = StdlibRouter(path)
    logger.info("event range channel %s bound (ROUTER, %s; asked for: %s)", endpoint(name), router.description,
                wanted)
    return router
