"""The pilot's entry point (``pilot.py`` and the ``pilot`` console command)."""

from __future__ import annotations

import argparse
import gc
import importlib
import inspect
import logging
import os
import shutil
import sys
import time
from typing import Any, Optional, Sequence
from urllib.parse import urlsplit

from pilot.common.exception import ConfigurationError, PilotException
from pilot.util.auxiliary import shell_exit_code
from pilot.util.constants import PILOT_VERSION
from pilot.util.parameters import parse_args
from pilot.util.runner import Runner, use_runner
from pilot.util.summary import EXIT_INTERRUPTED, EXIT_USAGE, RunSummary

logger = logging.getLogger("pilot")

#: workflows whose ranks or helpers expect the launch directory itself as the main work dir
_HPC_WORKFLOWS = ("generic_hpc", "production_hpc", "analysis_hpc", "eventservice_hpc")


def create_main_workdir(workdir: str) -> str:
    """``<workdir>/PanDA_Pilot2_<pid>_<epoch>`` when a work dir is given, else the current directory."""
    if not workdir:
        return os.getcwd()
    path = os.path.join(os.path.abspath(workdir), f"PanDA_Pilot2_{os.getpid()}_{int(time.time())}")
    os.makedirs(path, exist_ok=True)
    return path


def launch_dir_is_main_dir(args: Any) -> bool:
    """Without ``-a``: Harvester, aCT (``-z``) and HPC launches exchange files in the launch directory
    itself, as Pilot 2 does; every other pilot makes its own ``PanDA_Pilot2_*`` dir there."""
    from pilot.util.harvester import ENV_IDS

    names = ("harvester_workdir", "harvester_datadir", "harvester_eventstatusdump", "harvester_workerattributes")
    harvester = any(getattr(args, name, "") for name in names)
    return (not args.update_server or harvester or any(name in os.environ for name in ENV_IDS)
            or args.workflow in _HPC_WORKFLOWS)


def check_options(args: Any) -> None:
    """Option values argparse cannot check: raise ConfigurationError naming the option."""
    if args.cacert and not os.path.isfile(args.cacert):
        raise ConfigurationError(f"option --cacert: {args.cacert} is not a file (give the CA certificate file)")
    if args.capath and not os.path.isdir(args.capath):
        raise ConfigurationError(f"option --capath: {args.capath} is not a directory")
    if args.workdir and os.path.exists(args.workdir) and not os.path.isdir(args.workdir):
        raise ConfigurationError(f"option -a/--workdir: {args.workdir} is not a directory")
    for option, url in (("--url", args.url), ("--queuedata-url", args.queuedata_url),
                        ("--storagedata-url", getattr(args, "storagedata_url", ""))):
        if url and "://" in url:
            parts = urlsplit(url)
            try:
                parts.port  # noqa: B018  (raises for a port that is not a number)
            except ValueError:
                raise ConfigurationError(f"option {option}: {url} has an invalid port") from None
            if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.hostname):
                raise ConfigurationError(f"option {option}: {url} is not an http(s):// or file:// URL")


def load_configuration(args: Any) -> Any:
    """Read the configuration files (``--config`` last) and check every value once: the config object."""
    from pilot.util.config import config

    if args.config:
        config.load_file(args.config)
    config.check()
    return config


def setup_logging(mainworkdir: str, debug: bool, nopilotlog: bool) -> None:
    """Log to stderr and, unless ``--no-pilot-log``, to ``pilotlog.txt`` in the main work dir."""
    fmt = logging.Formatter("%(asctime)s | %(levelname)-8s | %(threadName)-16s | %(name)-28s | %(message)s")
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    root.addHandler(stream)
    if not nopilotlog:
        from pilot.util.config import config

        handler = logging.FileHandler(os.path.join(mainworkdir, str(config.Pilot.pilotlog)))
        handler.setFormatter(fmt)
        root.addHandler(handler)


def log_path() -> str:
    """The pilot log file ('' without one)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return ""


def close_log_file() -> None:
    """Stop writing the pilot log file (before its directory is removed); stderr logging goes on."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()


def recovery_needs(mainworkdir: str, outbox_root: str) -> list:
    """Jobs in the recovery area whose files are in ``mainworkdir`` (a later pilot stages them out)."""
    from pilot.control.recovery import jobs_waiting_in
    from pilot.util.statefile import RECOVERY_DIR

    return jobs_waiting_in(os.path.join(outbox_root, RECOVERY_DIR), mainworkdir)


def clean_up(args: Any, launchdir: str, mainworkdir: str) -> bool:
    """``--cleanup`` (Pilot 2): remove the main work dir the pilot made; True when it was removed."""
    if not args.cleanup or os.path.abspath(mainworkdir) == os.path.abspath(launchdir):
        return False
    waiting = recovery_needs(mainworkdir, args.workdir or launchdir)
    if waiting:
        logger.info("keeping %s: job(s) %s wait in it for recovery", mainworkdir, ", ".join(waiting))
        return False
    os.chdir(launchdir)
    logger.debug("--cleanup: removing %s", mainworkdir)
    close_log_file()
    try:
        shutil.rmtree(mainworkdir)
    except OSError as exc:
        logger.warning("cannot remove the main work dir %s: %s", mainworkdir, exc)
        return False
    return True


def init_infosys(args: argparse.Namespace) -> object:
    """Load queuedata and storage data; a queue that is not ACTIVE raises 1359."""
    from pilot.info import infosys

    settings = {}
    if args.queuedata_url:
        settings["queuedata_url"] = args.queuedata_url
    if getattr(args, "storagedata_url", ""):
        settings["storagedata_url"] = args.storagedata_url
    from pilot.util.https import shared_client

    infosys.init(args.queue, http=shared_client(), **settings)
    infosys.check_queue()
    return infosys


def _start_http_client(args: argparse.Namespace) -> Any:
    """Build the pilot's one HTTP client (``--cacert``/``--capath`` made absolute, proxy variables,
    token) and register it; a missing file or an unusable proxy variable is a ConfigurationError."""
    from pilot.util.https import HttpSetupError, client_from_args, set_shared_client

    try:
        http = client_from_args(args)
    except HttpSetupError as exc:
        raise ConfigurationError(str(exc)) from None
    set_shared_client(http)
    from pilot.util.proxy import forget_token_values

    forget_token_values()  # the client holds the token now: not in the pilot's environment (/proc/<pid>/environ)
    return http


def end_of_startup() -> None:
    """Freeze what start-up created and turn the garbage collector (back) on.

    Start-up (imports, configuration, info service, workflow modules) creates ~30 000 objects
    that live as long as the pilot. With the collector on they were traversed again and again
    (~10 ms of CPU per pilot); frozen, no later collection looks at them. The few hundred objects
    in reference cycles that start-up leaves behind stay too (a full collection to free them
    would cost as much as the rest). ``pilot.py`` and :func:`main` keep the collector off until then.
    """
    gc.freeze()
    gc.enable()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the pilot; return the process exit status (compat §6.3, doc/source/usage.rst)."""
    gc.disable()  # until end_of_startup(), once the workflow is loaded
    try:
        return _main(argv)
    except ConfigurationError as exc:  # a configuration or option mistake: one line, no traceback
        print(f"pilot: {exc.diag}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C before the workflow took over the signals
        print("pilot: interrupted (SIGINT) during start-up", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if not gc.isenabled():  # start-up ended early (usage error, bad work dir, queue not usable)
            end_of_startup()


def _main(argv: Optional[Sequence[str]]) -> int:
    args = parse_args(argv)
    check_options(args)
    launchdir = os.getcwd()
    load_configuration(args)
    os.environ["PILOT_USER"] = args.pilot_user
    http = _start_http_client(args)  # --cacert/--capath resolved before the chdir below
    if not args.workdir and not launch_dir_is_main_dir(args):
        args.workdir = launchdir  # the main work dir, the outbox and the recovery area stay out of the launch dir
    try:
        mainworkdir = create_main_workdir(args.workdir)
    except OSError as exc:
        print(f"pilot: option -a/--workdir: cannot create the pilot work dir under {args.workdir}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return shell_exit_code(1199)
    os.chdir(mainworkdir)
    os.environ["PILOT_HOME"] = mainworkdir
    setup_logging(mainworkdir, args.debug, args.nopilotlog)
    runner = Runner()  # every background activity of this pilot (see pilot.util.runner)
    with use_runner(runner):
        try:
            return _logged_run(args, launchdir, mainworkdir, http)
        finally:
            if not runner.stop(timeout=5):
                logger.warning("background activities still running at the end: %s", ", ".join(runner.alive()))


def _logged_run(args: Any, launchdir: str, mainworkdir: str, http: Any) -> int:
    live_log = None
    if getattr(args, "use_realtime_logging", False):  # stream the log as well (the local log is unchanged)
        from pilot.util import realtimelog

        live_log = realtimelog.start(args, http=http)
    logger.info("PanDA pilot %s starting on queue %s (workflow %s, experiment %s)", PILOT_VERSION, args.queue,
                args.workflow, args.pilot_user)
    logger.debug("launch dir %s, main work dir %s, configuration files %s", launchdir, mainworkdir,
                 ", ".join(sys.modules["pilot.util.config"].config.sources))
    summary = RunSummary()
    code = 0
    try:
        code = _run_workflow(args, mainworkdir, summary)
    finally:
        if live_log is not None:
            realtimelog.stop(live_log)
    status = shell_exit_code(code)
    if summary.signal == "SIGINT":  # Ctrl-C: the job is reported with 1200 as in Pilot 2, the shell sees 130
        status = EXIT_INTERRUPTED
    logfile = log_path()
    removed = clean_up(args, launchdir, mainworkdir)
    for line in summary.lines(status, code, mainworkdir, logfile, removed):
        logger.info("%s", line)
    return status


def _run_workflow(args: argparse.Namespace, mainworkdir: str, summary: RunSummary) -> int:
    """Initialise the info service and run the chosen workflow; the pilot error code."""
    try:
        infosys = init_infosys(args)
    except PilotException as exc:
        logger.error("cannot start: %s", exc)
        summary.stopped_early = exc.diag[:200]
        return exc.get_error_code()
    workflow = importlib.import_module(f"pilot.workflow.{args.workflow}")
    end_of_startup()
    extra = {"summary": summary} if "summary" in inspect.signature(workflow.run).parameters else {}
    code = workflow.run(args, mainworkdir=mainworkdir, infosys=infosys, **extra)
    logger.info("pilot done: error code %s, exit status %s", code, shell_exit_code(code))
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
