"""One guarded process: every payload path starts, watches and stops its payload through this class.

:class:`GuardedProcess` builds the command line of the payload guard (:mod:`pilot.util.payloadguard`),
starts it, reads its status record from a pipe (never from a file the payload could forge), stops it
(SIGTERM to the guard, which stops the whole payload tree; SIGKILL of the tree when the guard does
not end in time) and, when the guard itself was killed, stops whatever it left. The generic
executor, the coprocess, the event-service executor and the stand-alone event-service launcher all
use it, so every payload gets the same isolation:

- its own PID namespace where the kernel allows it (``[Payload] process_isolation``);
- the pilot's credentials masked (``[Payload] credential_isolation``);
- an unprivileged uid when the pilot runs as root (``[Payload] payload_user``);
- its own cgroup where cgroup v2 is writable, emptied with ``cgroup.kill`` at the end;
- a guard that dies with the pilot (``PR_SET_PDEATHSIG``) and takes the payload with it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import pwd
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from pilot.util import payloadns
from pilot.util.config import config
from pilot.util.processes import (TreeTracker, children, innermost_pid, kill_process_tree, processes_with_environ,
                                  tree_cpu_seconds, tree_table, wait_for_exit)
from pilot.util.runner import Activity
from pilot.util.runner import start as start_activity

logger = logging.getLogger(__name__)

PILOT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOOTSTRAP = (f"import sys; sys.path.insert(0, {PILOT_ROOT!r}); "
             "from pilot.util.payloadguard import main; sys.exit(main())")
#: ``[Payload] credential_isolation`` and ``process_isolation`` values
ISOLATION_MODES = ("auto", "required", "off")
#: the largest status record read back from the guard
MAX_STATUS = 1 << 20
#: the default ``[Payload] payload_user`` of a pilot that runs as root
DEFAULT_PAYLOAD_USER = "nobody"
#: a variable in every guarded payload's environment: the last-resort search after a killed guard
MARK_VARIABLE = "PILOT_PAYLOAD_MARK"


def _mode(key: str) -> str:
    value = config.Payload.get(key, "auto")
    if value is False:  # the config reader turns 'false' into a boolean
        return "off"
    text = str("auto" if value is None or value is True else value).strip().lower() or "auto"
    if text not in ISOLATION_MODES:
        logger.warning("[Payload] %s = %r is not one of %s: using auto", key, value, "/".join(ISOLATION_MODES))
        return "auto"
    return text


def credential_isolation_mode() -> str:
    """``[Payload] credential_isolation``: auto (default), required or off (``false`` also means off)."""
    return _mode("credential_isolation")


def process_isolation_mode() -> str:
    """``[Payload] process_isolation`` (the payload's own PID namespace): auto (default), required or off."""
    return _mode("process_isolation")


def payload_user_ids(value: Optional[str] = None) -> Optional[Tuple[int, int]]:
    """(uid, gid) a root pilot runs its payload as: ``[Payload] payload_user`` (a name or a number).

    None when the pilot does not run as root (its payload keeps the pilot's uid, inside a user
    namespace without capabilities) or when the key is empty, ``off`` or ``root``. An unknown name
    is logged and falls back to ``nobody``.
    """
    if os.geteuid() != 0:
        return None
    if value is None:
        value = config.Payload.get("payload_user", DEFAULT_PAYLOAD_USER)
    text = "" if value is False or value is None else str(value).strip()
    if text.lower() in ("", "off", "none", "false", "root", "0"):
        return None
    try:
        entry = pwd.getpwuid(int(text)) if text.isdigit() else pwd.getpwnam(text)
        return entry.pw_uid, entry.pw_gid
    except (KeyError, ValueError):
        if text.isdigit():
            return int(text), int(text)
        logger.warning("[Payload] payload_user = %r is not a user of this node: using %s", text,
                       DEFAULT_PAYLOAD_USER)
        try:
            entry = pwd.getpwnam(DEFAULT_PAYLOAD_USER)
            return entry.pw_uid, entry.pw_gid
        except KeyError:
            return 65534, 65534


def reachable_by(path: str, uid: int, gid: int) -> bool:
    """True when ``uid``/``gid`` may traverse every directory above ``path`` (its own mode aside)."""
    current = os.path.dirname(os.path.realpath(path))
    while True:
        try:
            st = os.stat(current)
        except OSError:
            return False
        if st.st_uid == uid:
            bit = 0o100
        elif st.st_gid == gid:
            bit = 0o010
        else:
            bit = 0o001
        if not st.st_mode & bit:
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent


def hand_over(workdir: str, uid: int, gid: int) -> None:
    """Give the work dir, its directories and its own files to the payload's uid.

    Links are never followed and never changed: a symlink stays the pilot's, and so does a file with
    more than one hard link (an input linked from a storage area or a cache: its other names must not
    become the payload's to write). Such files stay as readable as they were.
    """
    os.chown(workdir, uid, gid, follow_symlinks=False)
    for root, dirs, files in os.walk(workdir):
        for name in dirs + files:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
                if stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_nlink == 1):
                    os.chown(path, uid, gid, follow_symlinks=False)
            except OSError as exc:  # a file that vanished meanwhile
                logger.debug("chown %s: %s", name, exc)


@dataclass
class GuardSpec:
    """What to run under the guard and how."""

    line: str
    workdir: str
    stdout: str
    stderr: str
    status_path: str
    env: dict
    grace: float = 10.0
    masks: List[str] = field(default_factory=list)
    credential_isolation: str = "auto"
    process_isolation: str = "auto"
    payload_user: Optional[Tuple[int, int]] = None
    cgroup: bool = True
    label: str = "payload"
    nice: int = 0  # niceness increment of the payload (OneBox background jobs)
    ionice: int = 0  # I/O class of the payload (3: idle), 0: unchanged


class GuardedProcess:
    """start() -> guard PID, wait() -> status record, kill(reason), cpu_seconds(): one payload under guard.

    The record is the guard's (see :mod:`pilot.util.payloadguard`), plus ``guard_lost: True`` when the
    guard itself was killed (it then holds only the exit status) and ``payload_user`` refusal notes.
    """

    def __init__(self, spec: GuardSpec) -> None:
        self.spec = spec
        self.proc: Optional[subprocess.Popen] = None
        self.tracker: Optional[TreeTracker] = None
        self.cgroup = ""
        self.user_note = ""
        self._status_fd: Optional[int] = None
        self._timer: Optional[Activity] = None  # the escalation after a kill
        self.mark = f"{MARK_VARIABLE}={os.urandom(16).hex()}"  # not uuid: it loads platform and ctypes' uuid

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc is not None else None

    def _payload_user(self) -> Optional[Tuple[int, int]]:
        """The payload's uid/gid, when it may run as it (the work dir must be reachable); the work dir handed over."""
        ids = self.spec.payload_user
        if ids is None:
            return None
        if not reachable_by(self.spec.workdir, *ids):
            self.user_note = (f"the work dir {self.spec.workdir} is not reachable by uid {ids[0]}: the payload runs "
                              "as the pilot's user")
            return None
        hand_over(self.spec.workdir, *ids)
        return ids

    def command(self, status_fd: int, user: Optional[Tuple[int, int]]) -> List[str]:
        spec = self.spec
        cmd = [sys.executable, "-S", "-c", BOOTSTRAP, "--status", spec.status_path, "--status-fd", str(status_fd),
               "--pilot-pid", str(os.getpid()), "--grace", str(spec.grace), "--stdout", spec.stdout,
               "--stderr", spec.stderr, "--cwd", spec.workdir, "--isolation", spec.credential_isolation,
               "--pidns", spec.process_isolation]
        if user is not None:
            cmd += ["--user", f"{user[0]}:{user[1]}"]
        if self.cgroup:
            cmd += ["--cgroup", self.cgroup]
        cmd += [arg for path in spec.masks for arg in ("--mask", path)]
        if spec.nice:
            cmd += ["--nice", str(spec.nice)]
        if spec.ionice:
            cmd += ["--ionice", str(spec.ionice)]
        return cmd + ["--", spec.line]

    def start(self) -> int:
        """Start the guard; return its PID. Raises OSError when it cannot be started."""
        user = self._payload_user()
        if self.user_note:
            logger.warning("%s: %s", self.spec.label, self.user_note)
        if self.spec.cgroup:
            self.cgroup = payloadns.make_job_cgroup(payloadns.job_cgroup_name(self.spec.label, os.urandom(6).hex()))
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        try:
            env = dict(self.spec.env)
            env[MARK_VARIABLE] = self.mark.partition("=")[2]
            self.proc = subprocess.Popen(self.command(write_fd, user), cwd=self.spec.workdir, env=env,
                                         stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=(write_fd,))
        except BaseException:
            os.close(read_fd)
            self._remove_cgroup()
            raise
        finally:
            os.close(write_fd)
        self._status_fd = read_fd
        self.tracker = TreeTracker(self.proc.pid)
        return self.proc.pid

    def wait(self) -> dict:
        """Block until the guard and the payload's tree are gone; the status record."""
        assert self.proc is not None
        returncode = self.proc.wait()
        if self._timer is not None:
            self._timer.cancel()
        status = self._read_status()
        if status is None:
            # the guard itself was killed: its own exit status, and a sweep of what it left
            status = {"exit_code": returncode if returncode >= 0 else 128 - returncode,
                      "signal": -returncode if returncode < 0 else None, "cpu": None, "guard_lost": True}
            self._sweep()
        self._remove_cgroup()
        if self.user_note:
            status["payload_user_note"] = self.user_note
        return status

    def _read_status(self) -> Optional[dict]:
        """The record the guard wrote to its pipe (bounded; None when it wrote nothing usable)."""
        fd, self._status_fd = self._status_fd, None
        if fd is None:
            return None
        chunks, size = [], 0
        try:
            while size < MAX_STATUS:
                try:
                    chunk = os.read(fd, 65536)
                except OSError as exc:
                    if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        break
                    raise
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
        try:
            status = json.loads(b"".join(chunks)[:MAX_STATUS].decode(errors="replace"))
        except ValueError:
            return None
        return status if isinstance(status, dict) else None

    def guard_pids(self) -> List[int]:
        """The guard's own processes: the guard, and its namespace's init when the payload has one."""
        if self.proc is None:
            return []
        return [self.proc.pid] + [pid for pid in children(self.proc.pid) or [] if innermost_pid(pid) == 1]

    def cpu_seconds(self) -> Optional[float]:
        """CPU seconds of the payload tree so far (None before the start)."""
        if self.proc is None:
            return None
        table = tree_table(self.proc.pid)  # only the payload tree's /proc entries
        if self.tracker is not None:
            self.tracker.update(table)
        return tree_cpu_seconds(self.proc.pid, table)

    def kill(self, reason: str = "") -> bool:
        """SIGTERM the guard (it stops the tree); the tree is SIGKILLed if the guard does not end in time.

        False when there was nothing to stop.
        """
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return False
        logger.warning("%s: stopping it (%s)", self.spec.label, reason or "requested")
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        self._timer = start_activity(f"guard-escalation-{proc.pid}", self._escalate, delay=self.spec.grace + 15.0,
                                     label="guard-escalation")
        return True

    def _escalate(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            logger.error("%s: the payload guard did not stop in time; killing its tree", self.spec.label)
            payloadns.kill_cgroup(self.cgroup)
            kill_process_tree(proc.pid, pgrp=proc.pid, grace=2.0, extra=self.tracker.live() if self.tracker else ())

    def _sweep(self) -> None:
        """After the guard was killed: stop its cgroup, every tracked process, every process with the job's mark.

        Only possible where the payload shares the guard's PID namespace (``process_isolation`` off or
        refused); what the payload started in a new session and stripped of its environment before the
        pilot saw it escapes when there is no cgroup either (see the docs' "what a payload can do").
        """
        if payloadns.kill_cgroup(self.cgroup):
            logger.warning("%s: the guard was killed; its cgroup was killed", self.spec.label)
        if self.tracker is not None:
            leftovers = sorted(set(self.tracker.live()) | set(processes_with_environ(self.mark)))
            if leftovers:
                logger.warning("%s: %d process(es) left behind by a killed guard; killing them", self.spec.label,
                               len(leftovers))
                for pid in leftovers:
                    kill_process_tree(pid, grace=2.0)

    def _remove_cgroup(self) -> None:
        """Kill what is left in the job's cgroup (nothing, normally) and remove it."""
        path, self.cgroup = self.cgroup, ""
        if not path:
            return
        left = payloadns.cgroup_pids(path)
        if left:
            logger.warning("%s: %d process(es) left in the job's cgroup: cgroup.kill", self.spec.label, len(left))
            payloadns.kill_cgroup(path)
            wait_for_exit(left, 10.0)
        if not payloadns.remove_cgroup(path):
            logger.warning("%s: could not remove the job's cgroup %s", self.spec.label, path)
