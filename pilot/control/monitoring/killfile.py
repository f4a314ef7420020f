"""The kill instruction file: ``kill_instruction_filename`` (pilot_kill_payload) in the pilot's main
work dir or the job's work dir, looked for every ``kill_instruction_time`` seconds.

It is a request, not an error (compat 6.1): the payload is stopped and the job continues with
stage-out and ends ``finished`` (the payload control removes the 1363 marker once the payload is
gone). The file is consumed, so a following job is not stopped by the same request.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

from pilot.common.errorcodes import ErrorCodes

from .base import JobCheck, Verdict, WatchedJob, setting

logger = logging.getLogger(__name__)


class KillFileCheck(JobCheck):
    """Is there a kill instruction for this job's payload?"""

    name = "killfile"

    def __init__(self, watched: WatchedJob) -> None:
        super().__init__(watched, setting("kill_instruction_time", 60.0))
        self.filename = str(setting("kill_instruction_filename", "pilot_kill_payload", str))

    def paths(self) -> list:
        dirs = [getattr(self.watched.ctx, "mainworkdir", ""), self.job.workdir]
        return [os.path.join(d, self.filename) for d in dirs if d]

    def run(self, now: float) -> Optional[Verdict]:
        for path in self.paths():
            if os.path.exists(path):
                logger.warning("job %s: found the kill instruction %s: stopping the payload", self.job.jobid, path)
                try:
                    os.unlink(path)
                except OSError as exc:
                    logger.warning("cannot remove %s: %s", path, exc)
                return Verdict(ErrorCodes.KILLPAYLOAD, f"the payload was stopped on request ({os.path.basename(path)})")
        return None
