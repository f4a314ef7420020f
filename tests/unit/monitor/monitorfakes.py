"""Fakes for the monitor checks: a job, an executor, a context (imported by the unit tests)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from pilot.control.context import PilotContext
from pilot.info.jobdata import JobData, JobPhase


class FakeExecutor:
    """Records kills; ``proc`` is any object with a pid (the guard)."""

    def __init__(self, pid: int = 0, cpu: float = 1.5) -> None:
        self.proc = SimpleNamespace(pid=pid) if pid else SimpleNamespace(pid=999999999)
        self.kills: list = []
        self.cpu = cpu
        self.started = threading.Event()
        self.started.set()

    def kill(self, reason: str = "") -> None:
        self.kills.append(reason)

    def cpu_seconds(self):
        return self.cpu


class FakeReporter:
    """Collects heartbeats and finals; replies with queued commands."""

    def __init__(self) -> None:
        self.heartbeats: list = []
        self.finals: list = []
        self.replies: list = []
        self.last_update: dict = {}

    def heartbeat(self, job):
        from pilot.control.reporting import SiteInfo, build_update

        self.heartbeats.append(build_update(job, SiteInfo("S", "n", "p"), final=False, pilot_start=0))
        self.last_update[job.jobid] = time.monotonic()
        return {"command": self.replies.pop(0)} if self.replies else {}

    def final(self, job):
        self.finals.append(job)
        return True


class FakeUser:
    """The experiment plug-in loader with chosen modules (SimpleNamespace objects)."""

    def __init__(self, **modules) -> None:
        self.modules = modules

    def module(self, name):
        if name not in self.modules:
            raise ImportError(f"no module {name}")
        return self.modules[name]


def make_job(workdir, jobid: str = "42", **extra) -> JobData:
    definition = {"PandaID": jobid, "transformation": "/bin/true", "outFiles": "out.root,log.tgz",
                  "scopeOut": "s,s", "logFile": "log.tgz", "maxCpuCount": "0", "maxWalltime": "0",
                  "minRamCount": "0"}
    definition.update(extra)
    job = JobData.from_definition(definition)
    job.workdir = str(workdir)
    return job


def running(job: JobData) -> JobData:
    job.advance(JobPhase.VALIDATED)
    job.advance(JobPhase.STAGEIN)
    job.advance(JobPhase.PAYLOAD)
    return job


def make_ctx(tmp_path, queuedata=None, user=None) -> PilotContext:
    ctx = PilotContext(args=SimpleNamespace(verify_proxy=True), mainworkdir=str(tmp_path))
    ctx.reporter = FakeReporter()
    ctx.user = user or FakeUser()
    ctx.infosys = SimpleNamespace(queuedata=queuedata or SimpleNamespace(maxrss=0, corecount=1, maxwdir=0,
                                                                         maxtime=0))
    return ctx
