"""The generic workflow: start the components, wait for them, turn the outcome into an exit code."""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, Optional

from pilot.api.communicator import create_communicator
from pilot.common.errorcodes import ErrorCodes
from pilot.control import data, job, monitor, payload
from pilot.control.context import PilotContext
from pilot.control.recovery import RecoveryArea, resume_orphans
from pilot.control.reporting import Outbox, Reporter, SiteInfo, pilot_timing
from pilot.control.supervisor import Supervisor
from pilot.info.queuedata import resource_name
from pilot.util.config import config
from pilot.util.constants import PILOT_VERSION
from pilot.util.https import shared_client
from pilot.util.prometheus import start_metrics
from pilot.util.runner import use_runner
from pilot.util.statefile import OUTBOX_DIR, Ledger, StateLayout
from pilot.util.workernode import collect

if TYPE_CHECKING:
    from pilot.control.context import Communicator
    from pilot.info.queuedata import QueueData

logger = logging.getLogger(__name__)

HANDLED_SIGNALS = ("SIGINT", "SIGTERM", "SIGQUIT", "SIGSEGV", "SIGXCPU", "SIGUSR1", "SIGBUS")


class UserPlugins:
    """The experiment plug-in modules, loaded (and checked) on first use."""

    def __init__(self, experiment: str) -> None:
        self.experiment = experiment
        self._modules: dict = {}

    def module(self, name: str) -> Any:
        if name not in self._modules:
            from pilot.common.pluginfactory import load_user_module

            self._modules[name] = load_user_module(self.experiment, name)
        return self._modules[name]


def pilot_id(args: Any, node: Any) -> str:
    """``<GTAG>|<batch system>|<version tag>|<pilot version>`` (batch part left out when unknown)."""
    parts = [os.environ.get("GTAG", "unknown")]
    if node.batch_system:
        parts.append(node.batch_system)
    parts += [getattr(args, "version_tag", "PR"), PILOT_VERSION]
    return "|".join(parts)


def site_info(args: Any, queuedata: Optional[QueueData], node: Any) -> SiteInfo:
    """What every update of this pilot says about where it runs (site, node, pilot id, batch ids)."""
    return SiteInfo(site_name=resource_name(queuedata, args.queue), node=node.node_name,
                    pilot_id=pilot_id(args, node), batch_id=node.batch_job_id,
                    scheduler_id=os.environ.get("PANDA_JSID", ""),
                    cpu_consumption_unit=node.cpu_consumption_unit)


def state_layout(args: Any) -> StateLayout:
    """The pilot tree's state directories (``-a`` dir, else the launch dir), made private (0700) now.

    They exist before any payload starts, so the payload guard can mask them (see
    :meth:`StateLayout.masks`); their contents are checked whenever read back (:mod:`pilot.util.statefile`).
    """
    root = os.path.abspath(args.workdir or os.getcwd())
    layout = StateLayout(root, outbox_name=str(getattr(config.Pilot, "outbox_dir", "") or OUTBOX_DIR))
    try:
        layout.create()
    except OSError as exc:  # a full or read-only disk: the updates are still sent from memory
        logger.error("cannot create the pilot's state directories under %s: %s", root, exc)
    return layout


def build_context(args: Any, mainworkdir: str, infosys: Any = None,
                  communicator: Optional[Communicator] = None) -> PilotContext:
    """Create the shared context: server client, reporter with outbox, plug-ins."""
    ctx = PilotContext(args=args, mainworkdir=mainworkdir, infosys=infosys)
    node = collect()
    ctx.node = node
    http = shared_client(args)  # the one client pilot.main built from the options (or one from the config)
    http.stop_event = ctx.events.graceful_stop  # a stop request ends every back-off wait
    ctx.http = http
    reporting = args.update_server
    if communicator is None:  # the backend of this mode: PanDA server, Harvester files or aCT file
        communicator = create_communicator(args, mainworkdir, http, stop_event=ctx.events.graceful_stop,
                                           job_lookup=lambda jobid: ctx.current_jobs.get(str(jobid)))
        reporting = True  # with -z the chosen backend writes files instead of calling the server
    ctx.communicator = communicator
    queuedata = ctx.get_queuedata()
    site = site_info(args, queuedata, node)
    layout = state_layout(args)
    ledger = Ledger(layout.ledger)
    outbox = Outbox(layout.outbox, ledger=ledger)
    ctx.recovery = RecoveryArea(layout.recovery, layout=layout, ledger=ledger)
    ctx.user = UserPlugins(args.pilot_user)
    ctx.reporter = Reporter(communicator, site, outbox, ctx.start_time, enabled=reporting,
                            metrics=lambda job: ctx.user.module("jobmetrics").get_job_metrics(job))
    return ctx


def _realtime_handler() -> Any:
    """The real-time log handler, when ``main`` started one (the module is loaded only then)."""
    realtimelog = sys.modules.get("pilot.util.realtimelog")
    return realtimelog.active_handler() if realtimelog is not None else None


def install_signal_handlers(ctx: PilotContext, wake: Any) -> None:
    """Record a signal and wake the main thread (no I/O in the handler)."""

    def handler(signum: int, _frame: Any) -> None:
        if ctx.signal_name is None:
            ctx.signal_name = signal.Signals(signum).name
        wake.set()

    for name in HANDLED_SIGNALS:
        try:
            signal.signal(getattr(signal, name), handler)
        except (ValueError, OSError, AttributeError):  # not the main thread, or not on this platform
            pass


def handle_signal(ctx: PilotContext) -> None:
    """Abort the job with the code of the signal (compat §6.2) and stop the pilot."""
    name = ctx.signal_name or "SIGTERM"
    code = ErrorCodes.get_kill_signal_error_code(name)
    logger.warning("received %s: aborting the job with %d", name, code)
    ctx.pilot_error = code
    ctx.abort(code, f"the pilot received {name}")


#: the job-flow components after validation, in start order (a split workflow replaces some by name)
STAGES = {"stage_in": data.stage_in, "execute_payloads": payload.execute_payloads, "stage_out": data.stage_out}


def run(args: Any, mainworkdir: Optional[str] = None, infosys: Any = None, communicator: Optional[Communicator] = None,
        summary: Any = None, stages: Optional[dict] = None) -> int:
    """Run the generic workflow; return the pilot-level error code (0 on success).

    ``summary`` (a :class:`pilot.util.summary.RunSummary`) receives the counts for the exit summary.
    ``stages`` replaces (or with None drops) components of :data:`STAGES` by name (the Harvester split
    workflows).
    """
    mainworkdir = mainworkdir or os.getcwd()
    if getattr(args, "baseurls", ""):  # -g: where transformations may be downloaded from (plug-in setup)
        os.environ["PILOT_BASEURLS"] = args.baseurls
    ctx = build_context(args, mainworkdir, infosys=infosys, communicator=communicator)
    with use_runner(ctx.runner):  # every background activity of the run is counted in its metrics
        return _run(ctx, args, summary, stages)


def _run(ctx: PilotContext, args: Any, summary: Any, stages: Optional[dict]) -> int:
    ctx.metrics = start_metrics(ctx, timing=pilot_timing)  # the pilot's metrics file (pilot.util.prometheus)
    live_log = _realtime_handler()
    if live_log is not None:  # real-time logging: records carry the current PandaID
        ctx.reporter.listeners.append(live_log.note_update)
    delivered = ctx.reporter.flush_outbox()
    if delivered:
        logger.info("delivered %d stored final update(s) from an earlier pilot", delivered)
    lifetime = float(getattr(ctx.get_queuedata(), "maxtime", 0) or 0) or float(args.lifetime)
    pilot_monitor = monitor.PilotMonitor(ctx, lifetime)
    ctx.runner.on_failure = pilot_monitor.on_thread_failure  # a critical background activity fails like a component
    sup = Supervisor(on_failure=pilot_monitor.on_thread_failure)
    ctx.supervisor = sup
    install_signal_handlers(ctx, sup.changed)

    retriever = job.JobRetriever(ctx, ctx.node)
    job_monitor = monitor.JobMonitor(ctx)
    for name, period, check in getattr(ctx.communicator, "checks", list)():  # e.g. Harvester's worker heartbeat
        job_monitor.add_check(name, period, check)
    if summary is not None:
        summary.collected = True
        ctx.reporter.listeners.append(summary.listener(ctx))
    recovered = resume_orphans(ctx)
    if recovered:
        logger.info("recovering %d job(s) left by earlier pilots: %s", len(recovered), ", ".join(recovered))
        if summary is not None:
            summary.recovered = len(recovered)
    sup.start("retrieve", retriever.run)
    sup.start("validate", job.validate, ctx)
    for name, target in {**STAGES, **(stages or {})}.items():
        if target is not None:
            sup.start(name, target, ctx)
    sup.start("queue_monitor", job.queue_monitor, ctx)
    sup.start("job_monitor", job_monitor.run, critical=False)
    sup.start("pilot_monitor", pilot_monitor.run, critical=False)

    signal_handled = False
    while True:
        sup.changed.wait()
        sup.changed.clear()
        if ctx.signal_name and not signal_handled:
            signal_handled = True
            handle_signal(ctx)
        workers = [w for w in sup.alive() if w not in ("job_monitor", "pilot_monitor")]
        if not workers:
            break
    ctx.stop("all components finished")
    if ctx.reporter.retry_unsaved():  # the disk was full when a final update was made
        logger.error("final update(s) of job(s) %s neither delivered nor stored: the disk is full",
                     ", ".join(ctx.reporter.unsaved))
    ctx.http.close()
    sup.join(timeout=5)
    getattr(ctx.communicator, "close", lambda: None)()  # e.g. Harvester's kill_worker marker
    ctx.metrics.close()
    if summary is not None:
        summary.requests, summary.signal = retriever.requests, ctx.signal_name
    return exit_code(ctx)


def exit_code(ctx: PilotContext) -> int:
    """The pilot-level code: a signal's, a pilot failure's, else the only job's first error."""
    if ctx.pilot_error:
        return ctx.pilot_error
    if not ctx.jobs_processed and ctx.http is not None:  # the server never answered: say why (issue 17)
        from pilot.util.parameters import get_server_url

        server = get_server_url(ctx.args)
        reason = ctx.http.never_answered(f"{server}/server/panda/", f"{server}/api/")
        if reason:
            logger.error("no answer from the PanDA server: %s", reason)
            return ErrorCodes.COMMUNICATIONFAILURE
    if ctx.jobs_processed == 1 and ctx.last_job is not None:
        return ctx.last_job.errors.first()[0]
    return 0
