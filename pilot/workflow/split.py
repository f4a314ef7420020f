"""The Harvester split workflows: one pilot stages a job's inputs in, a later one runs it.

``-w stager`` (Pilot 3's name; ``-w stagein`` is Pilot 2's) runs the job flow up to stage-in: it
gets the job (server or Harvester files), validates it, stages its inputs in with the queue's
copytools and hands them over in the *input hand-over directory*; it then reports the job
``running`` (Harvester has set ``starting``; Pilot 3's stager pods do the same) and leaves it to the
payload pilot. A stage-in failure is reported as in the generic workflow (failed, with the log).

``-w payload_stageout`` runs the rest: it gets the same job, takes the inputs from the hand-over
directory (linked, else copied, into the job's work dir; size checked against the definition),
runs the payload and stages out outputs and log. An input missing there fails the job with 1331
MISSINGINPUTFILE. Neither Pilot 2 nor Pilot 3 shipped a ``payload_stageout`` module (the choice
ended in an ImportError); this is the meaning their Harvester split implies.

The hand-over directory is the first set of ``--input-dir`` (payload pilot), ``--input-destination-dir``,
``--harvester-workdir``, ``$HARVESTER_WORKDIR`` and ``-a`` (the directory the pilots are launched in).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from typing import TYPE_CHECKING, Any

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.util.filehandling import safe_join

if TYPE_CHECKING:
    from pilot.control.context import PilotContext

logger = logging.getLogger(__name__)


def handover_dir(args: Any, mainworkdir: str, reading: bool = False) -> str:
    """Where the stager leaves the inputs and the payload pilot finds them."""
    candidates = [getattr(args, "input_dir", "") if reading else "",
                  getattr(args, "input_destination_dir", ""), getattr(args, "harvester_workdir", ""),
                  os.environ.get("HARVESTER_WORKDIR", ""), getattr(args, "workdir", "")]
    return os.path.abspath(next((d for d in candidates if d), mainworkdir))


def _place(source: str, target: str) -> None:
    """Hard-link ``source`` to ``target`` (same file system), else copy it."""
    if os.path.lexists(target):
        os.unlink(target)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def hand_over_inputs(ctx: PilotContext) -> None:
    """Stager: finished_data_in -> inputs in the hand-over dir, job reported ``running``, left to the payload pilot."""
    from pilot.control.job import record_timing

    target = handover_dir(ctx.args, ctx.mainworkdir)
    while True:
        got = ctx.take(("finished_data_in",))
        if got is None:
            return
        job = got[1]
        try:
            os.makedirs(target, exist_ok=True)
            for spec in job.indata:
                _place(safe_join(job.workdir, spec.lfn), safe_join(target, spec.lfn))
        except (OSError, PilotException) as exc:
            job.fail(ErrorCodes.STAGEINFAILED, f"cannot hand the inputs over in {target}: {exc}")
            job.timing["stagein_failed"] = time.time()
            ctx.queues.put("failed_data_in", job)
            continue
        logger.info("job %s: %d input(s) staged in and handed over in %s; the payload pilot runs the job",
                    job.jobid, len(job.indata), target)
        ctx.reporter.heartbeat(job, state="running")
        record_timing(ctx, job.jobid, {k: v for k, v in job.timing.items() if k.startswith("PILOT_")})
        ctx.job_left(job)


def adopt_inputs(ctx: PilotContext) -> None:
    """Payload pilot: validated_jobs -> inputs from the hand-over dir -> finished_data_in | failed_data_in."""
    from pilot.control.data import begin_stage_in, end_stage_in

    source = handover_dir(ctx.args, ctx.mainworkdir, reading=True)
    while True:
        job = begin_stage_in(ctx)
        if job is None:
            return
        missing = []
        for spec in job.indata:
            try:
                path = safe_join(source, spec.lfn)
                if not os.path.isfile(path) or (spec.filesize and os.path.getsize(path) != int(spec.filesize)):
                    raise OSError("missing or of another size")
                _place(path, safe_join(job.workdir, spec.lfn))
            except (OSError, PilotException) as exc:
                logger.warning("job %s: input %s: %s", job.jobid, spec.lfn, exc)
                missing.append(spec.lfn)
                continue
            spec.status, spec.status_code = "transferred", 0
        if missing:
            job.fail(ErrorCodes.MISSINGINPUTFILE, f"input(s) not handed over in {source}: {', '.join(missing)}")
        else:
            logger.info("job %s: %d input(s) taken from %s", job.jobid, len(job.indata), source)
        end_stage_in(ctx, job, not missing)
