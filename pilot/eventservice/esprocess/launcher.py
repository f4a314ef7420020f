"""Start an event-service payload under the payload guard when no executor is given to ESProcess.

The pilot's payload control passes its own executor (so the job monitor measures and stops the
same process); this small launcher serves stand-alone users of ESProcess/ESManager. Either way the
payload runs through :class:`pilot.util.guardedprocess.GuardedProcess`, with the same isolation as
every other payload: its own PID namespace, the pilot's credentials masked, an unprivileged uid
when the pilot is root, its own cgroup, a guard that dies with the pilot.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from pilot.util.guardedprocess import (GuardedProcess, GuardSpec, credential_isolation_mode, payload_user_ids,
                                       process_isolation_mode)
from pilot.util.proxy import isolate_credentials, masked_credential_paths


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
        self.guarded: Optional[GuardedProcess] = None

    @property
    def proc(self) -> Any:
        return self.guarded.proc if self.guarded is not None else None

    @property
    def pid(self) -> Optional[int]:
        return self.guarded.pid if self.guarded is not None else None

    def start(self, line: str, env: Optional[dict] = None) -> int:
        """Start ``line`` (a shell line) in the work dir; return the guard's PID."""
        os.makedirs(self.workdir, exist_ok=True)
        payload_env = isolate_credentials({**self.env, **(env or {})}, self.workdir, keep_pilot_proxy=False,
                                          pilot_environ=self.env)
        mode = credential_isolation_mode()
        environs = [dict(os.environ), self.env]
        masks = [] if mode == "off" else masked_credential_paths(payload_env, self.workdir, environs)
        spec = GuardSpec(line=line, workdir=self.workdir, stdout=self.stdout, stderr=self.stderr,
                         status_path=self.status_path, env=payload_env, grace=self.grace, masks=masks,
                         credential_isolation=mode, process_isolation=process_isolation_mode(),
                         payload_user=payload_user_ids(), label="ES payload")
        self.guarded = GuardedProcess(spec)
        return self.guarded.start()

    def wait(self) -> dict:
        """Block until the payload's tree is gone; the guard's status record."""
        assert self.guarded is not None
        return dict(self.guarded.wait())

    def kill(self, reason: str = "") -> None:
        """SIGTERM the guard (it stops the tree); SIGKILL the tree if the guard does not end in time."""
        if self.guarded is not None:
            self.guarded.kill(reason or "requested")
