"""What every job check shares: the verdict type, the watched job, config helpers."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from pilot.util.config import config
from pilot.util.processes import tree_table

if TYPE_CHECKING:
    from pilot.control.payloads.generic import PayloadExecutor
    from pilot.control.context import PilotContext
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)(i?[bB])?\s*$")
_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4, "p": 1024 ** 5}


@dataclass
class Verdict:
    """A check's decision: fail the job with ``code`` and (normally) kill its payload."""

    code: int
    diag: str
    kill: bool = True


def setting(key: str, default: Any, conv: Callable[[Any], Any] = float) -> Any:
    """``config.Pilot.<key>`` converted with ``conv``; ``default`` when absent, empty or unusable."""
    value = config.Pilot.get(key, None)
    if value is None or value == "":
        return default
    try:
        return conv(value)
    except (TypeError, ValueError):
        logger.warning("bad value %r for [Pilot] %s; using %r", value, key, default)
        return default


def parse_size(value: Any) -> int:
    """Bytes from ``2 GB``, ``500GB``, ``14336 MB``, ``1.5 KiB`` or a plain number of bytes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r}")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * _UNITS[unit])


def size_setting(key: str, default: str) -> int:
    """A size from the config (bytes)."""
    return setting(key, parse_size(default), parse_size)


@dataclass
class WatchedJob:
    """One job whose payload is running, as the checks see it."""

    ctx: PilotContext
    job: JobData
    executor: PayloadExecutor
    started: float = field(default_factory=time.monotonic)  # monotonic time the watch began
    pause: Any = None  # suspend.PauseTracker, set by the job monitor

    @property
    def guard_pid(self) -> Optional[int]:
        proc = getattr(self.executor, "proc", None)
        return proc.pid if proc is not None else None

    def guard_pids(self) -> List[int]:
        """The guard's own processes (with a PID namespace: the guard and the namespace's init)."""
        own = getattr(self.executor, "guard_pids", None)
        pids = list(own()) if callable(own) else []
        root = self.guard_pid
        return pids or ([root] if root else [])

    def tree(self) -> dict:
        """``pid -> ProcInfo`` of the payload guard and everything below it (only their /proc entries)."""
        root = self.guard_pid
        return tree_table(root) if root else {}

    def payload_pids(self, table: Optional[dict] = None) -> List[int]:
        """The payload's processes (the guard itself left out), zombies excluded."""
        table = self.tree() if table is None else table
        guards = set(self.guard_pids())
        return [pid for pid, info in table.items() if pid not in guards and info.state not in ("Z", "X")]

    def queuedata(self) -> Any:
        getter = getattr(self.ctx, "get_queuedata", None)
        return getter() if getter else None

    def user_function(self, module: str, name: str) -> Optional[Callable]:
        """A function of the experiment plug-in, or None when the module or the function is missing."""
        user = getattr(self.ctx, "user", None)
        if user is None:
            return None
        try:
            return getattr(user.module(module), name, None)
        except Exception as exc:  # a missing or broken plug-in module must not stop the checks
            logger.warning("plug-in module %s unavailable: %s", module, exc)
            return None


class JobCheck:
    """Base of the per-job checks: a name, a period (s), ``run(now)`` and ``close()``."""

    name = "check"

    def __init__(self, watched: WatchedJob, period: float) -> None:
        self.watched = watched
        self.period = max(0.05, float(period))
        self.next_run = time.monotonic() + self.period

    @property
    def job(self) -> Any:
        return self.watched.job

    def due(self, now: float) -> bool:
        return now >= self.next_run

    def run_if_due(self, now: float) -> Optional[Verdict]:
        if not self.due(now):
            return None
        self.next_run = now + self.period
        return self.run(now)

    def run(self, now: float) -> Optional[Verdict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """The payload has ended (or the pilot stops): release what the check holds."""
