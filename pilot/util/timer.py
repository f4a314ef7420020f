"""Run a function with a time limit.

``@timeout(30)`` makes a function raise ``TimeoutException`` when it has not returned after 30 s.
The function runs in a daemon thread (a :mod:`pilot.util.runner` activity named ``timed-<function>``):
Python cannot kill a thread, so on time-out the caller gets the exception at once and the thread is
abandoned (it ends whenever the function returns). Use
``pilot.util.processes.run_command`` with its ``timeout`` for anything that must really be stopped.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Tuple

from pilot.common.exception import TimeoutException
from pilot.util.runner import start as start_activity

__all__ = ["TimeoutException", "TimedThread", "Timer", "timeout"]


class TimedThread:
    """Thread-based timer: ``TimedThread(seconds).run(func, args, kwargs)``."""

    def __init__(self, _timeout: Optional[float]) -> None:
        self.timeout = _timeout
        self.is_timeout = False
        self.result: Optional[Tuple[bool, Any]] = None

    def execute(self, func: Callable, args: tuple, kwargs: dict) -> Tuple[bool, Any]:
        """Call func and store (True, value) or (False, exception)."""
        try:
            self.result = (True, func(*args, **kwargs))
        except BaseException as exc:  # handed to the caller of run()
            self.result = (False, exc)
        return self.result

    def run(self, func: Callable, args: tuple = (), kwargs: Optional[dict] = None,
            _timeout: Optional[float] = None) -> Any:
        """Call func(*args, **kwargs); raise TimeoutException if it takes longer than the limit.

        An exception raised by func is re-raised unchanged.
        """
        limit = self.timeout if _timeout is None else _timeout
        call = start_activity(f"timed-{getattr(func, '__name__', 'call')}", self.execute, func, args, kwargs or {},
                              label="timed-call")
        if not call.join(limit):
            self.is_timeout = True
            raise TimeoutException("Timeout reached", timeout=limit)
        ok, value = self.result if self.result is not None else (False, TimeoutException("no result"))
        if ok:
            return value
        raise value


Timer = TimedThread


def timeout(seconds: Optional[float], timer: Optional[type] = None) -> Callable:
    """Decorator: the wrapped function raises TimeoutException after ``seconds`` (None = no limit)."""
    timer_class = timer or Timer

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return timer_class(seconds).run(function, args, kwargs)
        return wrapper

    return decorate
