"""What the pilot tells its user at exit: jobs asked for, received, finished and failed, where it
worked, where its log is, and what its exit status means.

A workflow fills a :class:`RunSummary` (``run(..., summary=...)``); ``pilot.main`` prints it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.util.auxiliary import get_error_code_translation_dictionary

if TYPE_CHECKING:
    from pilot.control.context import PilotContext

#: exit statuses that are not in Pilot 2's translation table (doc/source/usage.rst lists them all)
EXIT_USAGE = 2  # usage, option or configuration mistake: nothing was asked from the server
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2, as shells report it
_OTHER_MEANINGS = {
    0: "success: the job finished, or there was no job (with several jobs: the pilot did not fail; each job's "
       "state is above)",
    1: "failure: the job failed (error code above) or the pilot could not work",
    EXIT_USAGE: "usage, option or configuration mistake (nothing was asked from the server)",
    EXIT_INTERRUPTED: "interrupted by SIGINT (Ctrl-C)",
}


def exit_status_meaning(status: int, code: int = 0) -> str:
    """A short text for an exit status; ``code`` is the pilot error code behind it (if any)."""
    if status == 1 and code:
        return f"failure: error {code} ({ErrorCodes.get_error_message(code)})"
    if status in _OTHER_MEANINGS:
        return _OTHER_MEANINGS[status]
    for pilot_code, (shell_status, text) in get_error_code_translation_dictionary().items():
        if shell_status == status:
            return f"{text} (error {code or pilot_code})"
    return "unknown"


@dataclass
class JobOutcome:
    """The last state the pilot reported for one of its jobs."""

    jobid: str
    state: str
    code: int = 0
    diag: str = ""


@dataclass
class RunSummary:
    """Counts and outcomes of one pilot run (thread-safe: updates come from the component threads)."""

    requests: int = 0  # job requests made (getJob calls, job-file polls)
    jobs: Dict[str, JobOutcome] = field(default_factory=dict)  # received jobs, in order
    recovered: int = 0  # jobs of earlier pilots finished by this one
    signal: Optional[str] = None  # the signal that stopped the pilot
    collected: bool = False  # the workflow filled in the counts (the HPC workflow does not)
    stopped_early: str = ""  # why the pilot ended before its workflow ran
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def listener(self, ctx: PilotContext) -> Callable[[dict, bool], None]:
        """An update listener for ``Reporter.listeners``: notes every update of this pilot's own jobs."""

        def note(fields: dict, final: bool) -> None:
            jobid = str(fields.get("jobId", ""))
            job = ctx.current_jobs.get(jobid)
            if job is None or getattr(job, "recovered", False):  # a resent or recovered update
                return
            try:
                code = int(fields.get("pilotErrorCode") or 0)
            except (TypeError, ValueError):
                code = 0
            diag = str(fields.get("pilotErrorDiag") or "")[:160]
            with self._lock:
                self.jobs[jobid] = JobOutcome(jobid, str(fields.get("state", "")), code, diag)

        return note

    def counts(self) -> Dict[str, int]:
        with self._lock:
            states = [job.state for job in self.jobs.values()]
        return {"received": len(states), "finished": states.count("finished"), "failed": states.count("failed"),
                "other": len([s for s in states if s not in ("finished", "failed")])}

    def lines(self, status: int, code: int, workdir: str, log: str, removed: bool) -> List[str]:
        """The summary, a few lines of text."""
        count = self.counts()
        head = (f"pilot summary: {self.requests} job request(s), {count['received']} job(s) received: "
                f"{count['finished']} finished, {count['failed']} failed")
        if count["other"]:
            head += f", {count['other']} not finished here (e.g. holding for recovery)"
        if self.recovered:
            head += f"; {self.recovered} job(s) of earlier pilots recovered"
        if self.stopped_early:
            head = f"pilot summary: no job was asked for: {self.stopped_early}"
        elif not self.collected:
            head = "pilot summary: (this workflow does not count its jobs: see the log)"
        out = [head]
        with self._lock:
            jobs = list(self.jobs.values())
        for job in jobs:
            detail = f", error {job.code}: {job.diag}" if job.code else ""
            out.append(f"  job {job.jobid}: {job.state}{detail}")
        if self.signal:
            out.append(f"  stopped by {self.signal}")
        out.append(f"  work dir: {workdir}" + (" (removed at exit: --cleanup; keep it with --cleanup false)"
                                               if removed else ""))
        if not log:
            out.append("  log: none (--no-pilot-log); the log went to stderr")
        elif removed and log.startswith(workdir):
            out.append(f"  log: {log} was removed with the work dir (the same lines went to stderr)")
        else:
            out.append(f"  log: {log}")
        out.append(f"  exit status {status}: {exit_status_meaning(status, code)}")
        return out
