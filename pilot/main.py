"""The pilot's entry point (``pilot.py`` and the ``pilot`` console command)."""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
import time
from typing import Optional, Sequence

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.util.auxiliary import shell_exit_code
from pilot.util.config import config
from pilot.util.constants import PILOT_VERSION
from pilot.util.parameters import parse_args

logger = logging.getLogger("pilot")


def create_main_workdir(workdir: str) -> str:
    """``<workdir>/PanDA_Pilot2_<pid>_<epoch>`` when ``-a`` is given, else the current directory."""
    if not workdir:
        return os.getcwd()
    path = os.path.join(os.path.abspath(workdir), f"PanDA_Pilot2_{os.getpid()}_{int(time.time())}")
    os.makedirs(path, exist_ok=True)
    return path


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
        handler = logging.FileHandler(os.path.join(mainworkdir, str(config.Pilot.pilotlog)))
        handler.setFormatter(fmt)
        root.addHandler(handler)


def init_infosys(args) -> object:
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


def _start_http_client(args) -> object:
    """Build the pilot's one HTTP client and register it; None (after one line on stderr) when the
    options name a missing file or the proxy variables are unusable."""
    from pilot.util.https import HttpSetupError, client_from_args, set_shared_client

    try:
        http = client_from_args(args)
    except HttpSetupError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return None
    set_shared_client(http)
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
    """Run the pilot; return the process exit status (compat §6.3)."""
    gc.disable()  # until end_of_startup(), once the workflow is loaded
    try:
        return _main(argv)
    finally:
        if not gc.isenabled():  # start-up ended early (usage error, bad work dir, queue not usable)
            end_of_startup()


def _main(argv: Optional[Sequence[str]]) -> int:
    args = parse_args(argv)
    if args.config:
        config.load_file(args.config)
    os.environ["PILOT_USER"] = args.pilot_user
    http = _start_http_client(args)  # --cacert/--capath resolved before the chdir below
    if http is None:
        return shell_exit_code(ErrorCodes.NOSUCHFILE)
    try:
        mainworkdir = create_main_workdir(args.workdir)
    except OSError as exc:
        print(f"cannot create the pilot work dir under {args.workdir}: {exc}", file=sys.stderr)
        return shell_exit_code(1199)
    os.chdir(mainworkdir)
    os.environ["PILOT_HOME"] = mainworkdir
    setup_logging(mainworkdir, args.debug, args.nopilotlog)
    live_log = None
    if getattr(args, "use_realtime_logging", False):  # stream the log as well (the local log is unchanged)
        from pilot.util import realtimelog

        live_log = realtimelog.start(args, http=http)
    logger.info("PanDA pilot %s starting on queue %s (workflow %s, experiment %s)", PILOT_VERSION, args.queue,
                args.workflow, args.pilot_user)
    try:
        return _run_workflow(args, mainworkdir)
    finally:
        if live_log is not None:
            realtimelog.stop(live_log)


def _run_workflow(args, mainworkdir: str) -> int:
    """Initialise the info service and run the chosen workflow; the process exit status."""
    try:
        infosys = init_infosys(args)
    except PilotException as exc:
        logger.error("cannot start: %s", exc)
        return shell_exit_code(exc.get_error_code())
    workflow = importlib.import_module(f"pilot.workflow.{args.workflow}")
    end_of_startup()
    code = workflow.run(args, mainworkdir=mainworkdir, infosys=infosys)
    status = shell_exit_code(code)
    logger.info("pilot done: error code %s, exit status %s", code, status)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
