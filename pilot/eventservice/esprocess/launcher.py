"""Start an event-service payload under the payload guard when no executor is given to ESProcess.

The pilot's payload control passes its own executor (so the job monitor measures and stops the
same process); this small launcher serves stand-alone users of ESProcess/ESManager. Either way the
payload runs under :mod:`pilot.util.payloadguard`, and stopping it means signalling the guard the
launcher started, which stops the payload's whole tree.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any, Optional

from pilot.util.processes import kill_process_tree

logger = logging.getLogger(__name__)

PILOT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _file_name(value: Any, workdir: str, default: str) -> str:
    """A path for the payload's stdout/stderr from a name, a path or an open file object."""
    name = getattr(value, "name", value) or default
    name = str(name)
    return name if os.path.isabs(name) else os.path.join(workdir, name)


class GuardedLauncher:
    """start(line, env) -> pid, wait() -> status dict, kill(reason): one payload under the guard."""

    def __init__(self, workdir: str, stdout: Any = None, stderr: Any = None, env: Optional[dict] = None,
                 grace: float = 10.0) -> None:
        self.workdir = workdir or os.getcwd()
        self.stdout = _file_name(stdout, self.workdir, "ES_payload_output.txt")
        self.stderr = _file_name(stderr, self.workdir, "ES_payload_error.txt")
        self.status_path = os.path.join(self.workdir, "es_payload_guard.json")
        self.env = dict(env if env is not None else os.environ)
        self.grace = grace
        self.proc: Optional[subprocess.Popen] = None
        self._timer: Optional[threading.Timer] = None

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc is not None else None

    def start(self, line: str, env: Optional[dict] = None) -> int:
        """Start ``line`` (a shell line) in the work dir; return the guard's PID."""
        os.makedirs(self.workdir, exist_ok=True)
        bootstrap = (f"import sys; sys.path.insert(0, {PILOT_ROOT!r}); "
                     "from pilot.util.payloadguard import main; sys.exit(main())")
        cmd = [sys.executable, "-S", "-c", bootstrap, "--status", self.status_path, "--grace", str(self.grace),
               "--stdout", self.stdout, "--stderr", self.stderr, "--cwd", self.workdir, "--", line]
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, env={**self.env, **(env or {})},
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return self.proc.pid

    def wait(self) -> dict:
        """Block until the payload's tree is gone; the guard's status record."""
        assert self.proc is not None
        code = self.proc.wait()
        if self._timer is not None:
            self._timer.cancel()
        try:
            with open(self.status_path) as handle:
                return dict(json.load(handle))
        except (OSError, ValueError):
            return {"exit_code": code if code >= 0 else 128 - code, "signal": -code if code < 0 else None,
                    "cpu": None}

    def kill(self, reason: str = "") -> None:
        """SIGTERM the guard (it stops the tree); SIGKILL the tree if the guard does not end in time."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        logger.warning("stopping the ES payload: %s", reason or "requested")
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        self._timer = threading.Timer(self.grace + 15.0, self._escalate)
        self._timer.daemon = True
        self._timer.start()

    def _escalate(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            kill_process_tree(proc.pid, pgrp=proc.pid, grace=2.0)
