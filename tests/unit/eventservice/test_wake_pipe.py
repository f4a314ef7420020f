"""The routers' wake-up pipe: wake from any thread, drain, close; a wake after close is harmless."""

import select
import threading

from pilot.eventservice.zmtp import WakePipe


def readable(pipe, timeout=0.0):
    return bool(select.select([pipe.read_fd], [], [], timeout)[0])


def test_wake_drain_close():
    pipe = WakePipe()
    assert not readable(pipe) and pipe.drain()  # nothing pending: returns at once
    waker = threading.Thread(target=lambda: [pipe.wake() for _ in range(3)])
    waker.start()
    waker.join(10)
    assert readable(pipe, 10) and pipe.drain() and not readable(pipe)
    pipe.close()
    assert pipe.read_fd == -1
    pipe.wake()  # the router is closed: nothing to wake, nothing raised
    pipe.close()
