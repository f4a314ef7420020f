"""Which payload executor runs a job: generic, event service or event-service merge.

The event-service executors pull in the range channel, the ES stage-out and the merge code; a
plain job needs none of it, so they are imported only when a job asks for them (the pilot's own
memory and start-up time are part of what every slot pays).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pilot.control.payloads.generic import PayloadExecutor
from pilot.util.config import config

if TYPE_CHECKING:
    from pilot.control.context import PilotContext
    from pilot.info.jobdata import JobData


def executor_for(ctx: PilotContext, job: JobData) -> PayloadExecutor:
    """The payload executor for ``job``: event service, event-service merge, or generic."""
    if job.is_eventservice:
        from pilot.control.payloads.eventservice import EventServiceExecutor

        return EventServiceExecutor(ctx, job, executor_type(ctx))
    if job.is_eventservicemerge:
        from pilot.control.payloads.eventservicemerge import EventServiceMergeExecutor

        return EventServiceMergeExecutor(job, ctx.user)
    return PayloadExecutor(job, ctx.user)


def executor_type(ctx: PilotContext) -> str:
    """``--es-executor-type`` (default ``generic``; the ``[Payload] executor_type`` setting when not given)."""
    chosen = str(getattr(ctx.args, "executor_type", "") or "").strip()
    return chosen or str(config.Payload.get("executor_type", "generic") or "generic")
