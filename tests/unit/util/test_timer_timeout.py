"""Time-limited calls (thread based)."""

import threading
import time

import pytest

from pilot.util.timer import TimedThread, TimeoutException, timeout


def test_returns_value_in_time():
    @timeout(5)
    def add(a, b=1):
        return a + b

    assert add(1, b=2) == 3
    assert add.__name__ == "add"


def test_raises_timeout_quickly():
    release = threading.Event()

    @timeout(0.1)
    def stuck():
        release.wait(5)

    start = time.monotonic()
    with pytest.raises(TimeoutException) as info:
        stuck()
    release.set()
    assert time.monotonic() - start < 2
    assert info.value.timeout == 0.1 and info.value.code == 1367


def test_exception_of_function_is_reraised():
    @timeout(5)
    def boom():
        raise KeyError("inner")

    with pytest.raises(KeyError, match="inner"):
        boom()


def test_custom_timer_class_and_state():
    calls = []

    class RecordingTimer(TimedThread):
        def run(self, func, args, kwargs, _timeout=None):
            calls.append(self.timeout)
            return super().run(func, args, kwargs, _timeout)

    @timeout(3, timer=RecordingTimer)
    def one():
        return 1

    assert one() == 1 and calls == [3]
    timer = TimedThread(0.05)
    gate = threading.Event()
    with pytest.raises(TimeoutException):
        timer.run(gate.wait, (2,), {})
    gate.set()
    assert timer.is_timeout


def test_no_limit():
    assert TimedThread(None).run(lambda: "done") == "done"
