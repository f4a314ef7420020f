"""A real pilot inside its own PID namespace, as root or as an unprivileged user, for the security tests.

The pilot runs under :mod:`tests.security.nsinit` (PID 1 of a fresh PID and mount namespace made
by ``unshare -p -f --mount-proc --kill-child=SIGKILL``). The test keeps the init's stdin open;
closing it, or killing ``unshare``, ends the namespace and every process left in it. So a hostile
payload (``kill -1``, a ``setsid`` daemon, a fork bomb) never reaches the CI machine's processes.

The test sees the namespace from outside: :meth:`NsPilot.processes` lists the processes in it by
their host PIDs (``/proc/<pid>/ns/pid``), so "nothing left" and "the pilot is alive" are checked
with the host's ``/proc``, whatever the payload did to the namespace's own view.
"""

from __future__ import annotations

import os
import pwd
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[2]
#: the unprivileged account the "user" mode runs the pilot as (created by ensure_test_user)
TEST_USER = "pilottest"
MODES = ("root", "user")


@dataclass(frozen=True)
class PilotMode:
    """Who runs the pilot: ``root`` or ``user`` (the unprivileged :data:`TEST_USER`)."""

    name: str
    uid: int
    gid: int
    user: str  # '' for root

    @property
    def is_root(self) -> bool:
        return self.uid == 0


@dataclass(frozen=True)
class NsProcess:
    """One process of the namespace, seen from the host."""

    pid: int  # host PID
    nspid: int  # PID inside the namespace
    uid: int
    state: str
    cmdline: str


def ensure_test_user(name: str = TEST_USER) -> pwd.struct_passwd:
    """The unprivileged test account, created (system user, no home, no shell) when missing. Needs root."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise RuntimeError(f"user {name!r} is missing and only root can create it")
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "--user-group", name], check=True, capture_output=True)
    return pwd.getpwnam(name)


def mode_for(name: str) -> PilotMode:
    """The :class:`PilotMode` called ``name`` (``root`` or ``user``)."""
    if name == "root":
        return PilotMode("root", 0, 0, "")
    entry = ensure_test_user()
    return PilotMode("user", entry.pw_uid, entry.pw_gid, entry.pw_name)


def give_to(mode: PilotMode, *paths: Path) -> None:
    """Make ``paths`` (recursively) the pilot user's, so an unprivileged pilot can read and write them."""
    if mode.is_root:
        return
    for top in paths:
        top = Path(top)
        if not top.exists():
            continue
        os.chown(top, mode.uid, mode.gid, follow_symlinks=False)
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                os.chown(os.path.join(root, name), mode.uid, mode.gid, follow_symlinks=False)


def _pid_ns(pid: int) -> Optional[str]:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _status_fields(pid: int) -> dict:
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
    except OSError:
        return {}
    return fields


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@dataclass
class NsPilot:
    """One pilot under its namespace init; ``wait()`` for its exit, ``processes()`` for what is left."""

    proc: subprocess.Popen  # the ``unshare`` process
    workdir: Path
    log: Path
    mode: PilotMode
    init_pid: int = 0  # host PID of the namespace's init
    exit_code: Optional[int] = None
    lines: List[str] = field(default_factory=list)
    _buffer: bytes = b""

    # ---------------------------------------------------------------- reading the init's reports
    def _read_line(self, deadline: float) -> Optional[str]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    return None
                chunk = os.read(fd, 4096)
                if not chunk:
                    return None
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        text = line.decode(errors="replace")
        self.lines.append(text)
        return text

    def _await(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self._read_line(deadline)
            if line is None:
                raise AssertionError(f"no {prefix!r} from the namespace init in {timeout} s "
                                     f"(got {self.lines}); pilot log:\n{self.log_text()[-4000:]}")
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def _find_init(self, timeout: float = 30) -> None:
        self._await("PILOT_STARTED", timeout)
        me = _pid_ns(os.getpid())
        for pid in _children_of(self.proc.pid):
            if _pid_ns(pid) not in (None, me):
                self.init_pid = pid
                return
        raise AssertionError("the namespace init is not a child of unshare")

    def wait(self, timeout: float = 120) -> int:
        """The pilot's exit status (bounded: an AssertionError with the log after ``timeout``)."""
        if self.exit_code is None:
            self.exit_code = int(self._await("PILOT_EXIT", timeout))
        return self.exit_code

    # ---------------------------------------------------------------- looking into the namespace
    @property
    def namespace(self) -> Optional[str]:
        return _pid_ns(self.init_pid) if self.init_pid else None

    def processes(self, include_zombies: bool = False) -> List[NsProcess]:
        """Every process in the namespace but its init, by host PID."""
        ns = self.namespace
        if ns is None:
            return []
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == self.init_pid or _pid_ns(int(name)) != ns:
                continue
            fields = _status_fields(int(name))
            if not fields:
                continue
            state = fields.get("State", "?")[:1]
            if state in ("Z", "X") and not include_zombies:
                continue
            nspids = fields.get("NSpid", "0").split()
            found.append(NsProcess(int(name), int(nspids[-1]), int(fields.get("Uid", "0").split()[0]), state,
                                   _cmdline(int(name))))
        return found

    def pilot_process(self) -> Optional[NsProcess]:
        """The pilot's main process (the init's child running pilot.py), or None."""
        for entry in self.processes():
            if "pilot.py" in entry.cmdline and _status_fields(entry.pid).get("PPid") == str(self.init_pid):
                return entry
        return None

    def wait_until_empty(self, timeout: float = 60) -> List[NsProcess]:
        """Wait (bounded) until nothing but the init is left; the processes still there at the end."""
        deadline = time.monotonic() + timeout
        left = self.processes()
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = self.processes()
        return left

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def main_dir(self) -> Path:
        dirs = sorted(self.workdir.glob("PanDA_Pilot2_*"))
        assert dirs, f"no pilot main dir in {self.workdir}"
        return dirs[-1]

    def stop(self) -> None:
        """End the namespace: close the init's stdin, then SIGKILL unshare (its child goes with it)."""
        if self.proc.poll() is None:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _children_of(pid: int) -> List[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(x) for x in handle.read().split()]
    except OSError:
        return []


def start_ns_pilot(command: List[str], workdir: Path, mode: PilotMode, env: dict) -> NsPilot:
    """Start ``command`` (a pilot command line) under a fresh namespace init as ``mode``'s user."""
    if shutil.which("unshare") is None:
        raise RuntimeError("unshare (util-linux) is needed for the security tests")
    log = workdir / "pilot.stderr"
    init = [sys.executable, "-m", "tests.security.nsinit", "--log", str(log), "--cwd", str(workdir)]
    if not mode.is_root:
        init += ["--user", mode.user]
    argv = ["unshare", "-p", "-f", "--mount-proc", "--kill-child=SIGKILL"] + init + ["--"] + command
    proc = subprocess.Popen(argv, cwd=str(REPO), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=open(workdir / "nsinit.stderr", "ab"), start_new_session=True)
    run = NsPilot(proc, workdir, log, mode)
    try:
        run._find_init()
    except BaseException:
        run.stop()
        raise
    return run


def kill_host_pid(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal one process the test found in its own namespace (never anything else)."""
    os.kill(pid, sig)
