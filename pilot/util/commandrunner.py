"""The one command runner: start a command, bound it in time and output, yield to a stop event.

Every tool command the pilot runs (copytools, containers, ``execute``, proxy checks, setup checks,
debug commands, prmon, the benchmark workers) starts here; the payload alone starts through
:class:`pilot.util.guardedprocess.GuardedProcess`. A command:

- starts in its own session (its own process group), stdin from ``/dev/null`` unless text is given;
- ends at its time-out or when the caller's stop event is set: its whole tree and process group are
  stopped by the one process killer (:func:`pilot.util.proctree.kill_process_tree`, SIGTERM, a grace,
  SIGKILL), and the wait for its output and exit after the kill is bounded (:data:`REAP_TIMEOUT`);
- has its stdout and stderr read by the calling thread (one ``select`` loop, no helper threads), each
  kept to ``max_output`` bytes: the first and the last half, with a marker where the middle was
  dropped, so a command that writes gigabytes costs the pilot a few megabytes.

``start_process`` is the "start and hand me the handle" mode for callers that watch the process
themselves (Pilot 2's ``execute(..., returnproc=True)``, prmon); ``stop_process`` stops such a handle
the same way.
"""

from __future__ import annotations

import errno
import locale
import logging
import os
import selectors
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Sequence, Union

from pilot.util.proctree import kill_process_tree

logger = logging.getLogger(__name__)

#: bytes of stdout and of stderr a command keeps (its first and last half); the rest is dropped
MAX_OUTPUT = 8 * 1024 * 1024
#: seconds between looks at the caller's stop event while a command runs
STOP_CHECK = 0.25
#: seconds between SIGTERM and SIGKILL when a command is stopped
KILL_GRACE = 2.0
#: seconds the runner waits for a killed command's output and exit (an escaped process may hold the pipes)
REAP_TIMEOUT = 10.0
#: bytes read from a pipe at a time
CHUNK = 1 << 16

Command = Union[Sequence[str], str]


@dataclass
class CommandResult:
    """What a finished command left behind."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    cancelled: bool = False  # ended by the caller's stop event
    truncated: bool = False  # stdout or stderr was longer than the cap

    def __iter__(self) -> Iterator[Union[int, str]]:
        """Unpack as (exit_code, stdout, stderr), the Pilot 2 ``execute`` shape."""
        return iter((self.exit_code, self.stdout, self.stderr))


class BoundedOutput:
    """The bytes of one stream, kept to ``cap``: its first half and its last half."""

    def __init__(self, cap: int = MAX_OUTPUT) -> None:
        self.head_cap = max(0, cap) // 2
        self.tail_cap = max(0, cap) - self.head_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self.tail_cap:
            self.tail += data[-self.tail_cap:]
            excess = len(self.tail) - self.tail_cap
            if excess > 0:
                del self.tail[:excess]  # cheap in CPython: the buffer start moves

    @property
    def dropped(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        """The kept bytes decoded as text mode ``Popen`` would (locale encoding, universal newlines)."""
        encoding = locale.getpreferredencoding(False)
        text = self.head.decode(encoding, errors="replace")
        if self.dropped:
            text += f"\n[... {self.dropped} bytes of output dropped ...]\n"
        text += self.tail.decode(encoding, errors="replace")
        return text.replace("\r\n", "\n").replace("\r", "\n")


def _argv(cmd: Command, shell: bool) -> Command:
    """Without a shell a string is split on white space only (no shell parsing): pass a list to quote."""
    return cmd.split() if isinstance(cmd, str) and not shell else cmd


def start_process(cmd: Command, shell: Optional[bool] = None, **popen: Any) -> subprocess.Popen:
    """Start ``cmd`` in its own session and hand back the ``Popen``: the caller watches, reads and stops it.

    ``shell`` defaults to whether ``cmd`` is a string (Pilot 2's ``execute`` rule). Keyword arguments
    go to ``Popen`` (``cwd``, ``env``, ``stdout``, ``stderr``, ``text``...); stdin is ``/dev/null``
    unless given. Stop the handle with :func:`stop_process`. Raises OSError when it cannot start.
    """
    shell = isinstance(cmd, str) if shell is None else shell
    popen.setdefault("stdin", subprocess.DEVNULL)
    popen["start_new_session"] = True
    return subprocess.Popen(_argv(cmd, shell), shell=shell, **popen)


def stop_process(proc: subprocess.Popen, grace: float = KILL_GRACE, reap: Optional[float] = None) -> Optional[int]:
    """Stop a started process's tree and process group if it still runs; wait for its exit with a bound.

    Returns its exit status (None when it did not end within the bound, which is logged).
    """
    if proc.poll() is None:
        kill_process_tree(proc.pid, pgrp=proc.pid, grace=grace)
    try:
        return proc.wait(REAP_TIMEOUT if reap is None else reap)
    except subprocess.TimeoutExpired:
        logger.warning("process %d did not end after SIGKILL", proc.pid)
        return None


class CommandProcess:
    """One command: ``start()``, then ``wait(timeout, stop_event)`` for its :class:`CommandResult`.

    Several can be started and waited for in turn (the benchmark's workers); ``run()`` does both.
    """

    def __init__(self, cmd: Command, cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                 shell: bool = False, input_text: Optional[str] = None, max_output: int = MAX_OUTPUT,
                 grace: float = KILL_GRACE) -> None:
        self.cmd = _argv(cmd, shell)
        self.cwd = cwd
        self.env = env
        self.shell = shell
        self.input = (input_text or "").encode(locale.getpreferredencoding(False)) if input_text else b""
        self.max_output = max_output
        self.grace = grace
        self.proc: Optional[subprocess.Popen] = None
        self.error = ""

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> bool:
        """Start the command; False (and the reason kept for the result) when it cannot be executed."""
        try:
            self.proc = subprocess.Popen(self.cmd, shell=self.shell, cwd=self.cwd, env=self.env,
                                         stdin=subprocess.PIPE if self.input else subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            self.error = f"cannot execute {self.cmd!r}: {exc}"
            return False
        return True

    def run(self, timeout: Optional[float] = None, stop_event: Optional[threading.Event] = None) -> CommandResult:
        """Start the command and wait for it."""
        self.start()
        return self.wait(timeout, stop_event)

    def wait(self, timeout: Optional[float] = None, stop_event: Optional[threading.Event] = None) -> CommandResult:
        """Read the output until the command ends, its time-out passes or ``stop_event`` is set.

        The time-out counts from this call. On time-out or stop the tree is killed, the output read
        so far (and what follows within :data:`REAP_TIMEOUT`) is kept, and the exit code is -1.
        """
        proc = self.proc
        if proc is None:
            return CommandResult(127, "", self.error or f"{self.cmd!r} was not started")
        out, err = BoundedOutput(self.max_output), BoundedOutput(self.max_output)
        deadline = None if timeout is None else time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            self._register(sel, out, err)
            try:
                ended = self._pump(sel, deadline, stop_event)
            except BaseException:  # an exception in the waiting thread must not leave the command behind
                stop_process(proc, grace=self.grace)
                self._close()
                raise
            if ended is None:
                returncode = proc.returncode
                note, timed_out, cancelled = "", False, False
            else:
                cancelled = ended == "stop"
                timed_out = not cancelled
                logger.warning("%s: killing the process tree of %s (PID %d)",
                               "cancelled" if cancelled else "timed out", self._name(), proc.pid)
                kill_process_tree(proc.pid, pgrp=proc.pid, grace=self.grace)
                if self._pump(sel, time.monotonic() + REAP_TIMEOUT, None) is not None:
                    err.add(f"\nits output was still held open {REAP_TIMEOUT} s after the kill".encode())
                stop_process(proc, grace=self.grace)
                returncode = -1
                note = "cancelled" if cancelled else f"command timed out after {timeout} s"
        self._close()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s (PID %d) ended with %s: %d bytes of stdout, %d of stderr%s", self._name(), proc.pid,
                         returncode, out.total, err.total, " (kept to the cap)" if out.dropped or err.dropped else "")
        stderr = err.text() + (f"\n{note}" if note else "")
        return CommandResult(returncode if returncode is not None else -1, out.text(), stderr,
                             timed_out=timed_out, cancelled=cancelled, truncated=bool(out.dropped or err.dropped))

    def _name(self) -> str:
        if isinstance(self.cmd, str):
            return (self.cmd.split() or [""])[0]
        return str(self.cmd[0]) if self.cmd else ""

    def _register(self, sel: selectors.BaseSelector, out: BoundedOutput, err: BoundedOutput) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None and proc.stderr is not None
        for stream, sink in ((proc.stdout, out), (proc.stderr, err)):
            os.set_blocking(stream.fileno(), False)
            sel.register(stream.fileno(), selectors.EVENT_READ, sink)
        if proc.stdin is not None:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE, None)

    def _pump(self, sel: selectors.BaseSelector, deadline: Optional[float],
              stop_event: Optional[threading.Event]) -> Optional[str]:
        """Move bytes until the pipes close and the process exits (None), or 'timeout' / 'stop'."""
        proc = self.proc
        assert proc is not None
        while True:
            if stop_event is not None and stop_event.is_set():
                return "stop"
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return "timeout"
            step = remaining if stop_event is None else min(STOP_CHECK, remaining if remaining is not None
                                                            else STOP_CHECK)
            if not sel.get_map():
                try:  # the pipes are closed: only the exit is left to wait for
                    proc.wait(step)
                    return None
                except subprocess.TimeoutExpired:
                    continue
            for key, _ in sel.select(step):
                if key.data is None:
                    self._feed(sel, key.fd)
                else:
                    self._read(sel, key.fd, key.data)

    def _read(self, sel: selectors.BaseSelector, fd: int, sink: BoundedOutput) -> None:
        try:
            data = os.read(fd, CHUNK)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return
            data = b""
        if data:
            sink.add(data)
        else:
            sel.unregister(fd)

    def _feed(self, sel: selectors.BaseSelector, fd: int) -> None:
        try:
            written = os.write(fd, self.input[:CHUNK])
        except BlockingIOError:
            return
        except OSError:  # the command closed its stdin: the rest of the input is not wanted
            written = len(self.input)
        self.input = self.input[written:]
        if not self.input:
            sel.unregister(fd)
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.close()

    def _close(self) -> None:
        proc = self.proc
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass


def run_command(cmd: Command, timeout: Optional[float] = None, cwd: Optional[str] = None,
                env: Optional[dict] = None, shell: bool = False, input_text: Optional[str] = None,
                stop_event: Optional[threading.Event] = None, max_output: int = MAX_OUTPUT,
                grace: float = KILL_GRACE) -> CommandResult:
    """Run ``cmd`` to completion (or its time-out, or the stop event) and return its exit code and output.

    Without ``shell=True`` a string is split on white space only (no shell parsing): callers that
    need quoting pass a list. A command that cannot be executed gives exit code 127.
    """
    return CommandProcess(cmd, cwd=cwd, env=env, shell=shell, input_text=input_text, max_output=max_output,
                          grace=grace).run(timeout, stop_event)
