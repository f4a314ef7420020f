"""Communicator API: one interface for asking for jobs and reporting them, whatever sits on the other side.

The job control only calls a :class:`Communicator`; the backend decides where jobs come from and
where updates go. :func:`create_communicator` picks it from the options (compat §10):

* Harvester mode (a Harvester option with ``-z``, or ``HARVESTER_ID``/``HARVESTER_WORKER_ID`` in
  PUSH mode): :class:`~pilot.api.communicators.harvester.HarvesterCommunicator`, Harvester's shared
  files; PULL mode also asks the server for jobs, PUSH mode never does.
* ``-z`` without Harvester (aCT, NorduGrid): :class:`~pilot.api.communicators.act.ActCommunicator`,
  updates in ``heartbeat.json``, jobs from pre-placed files only.
* otherwise :class:`~pilot.api.communicators.panda.PandaServerCommunicator`: a pre-placed
  ``pandaJobData.out``, else the server, in its legacy or REST protocol (``[Pilot] server_api``, with
  automatic fallback to the other one, ``server_api_fallback``).

Every backend receives the same update dictionary (:func:`pilot.control.reporting.build_update`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Mapping, Optional, Protocol

from pilot.api.communicators.jobfiles import JobFiles
from pilot.api.communicators.panda import API_NAMES, PandaServerCommunicator
from pilot.util import harvester as hv
from pilot.util.config import config
from pilot.util.https import HttpClient
from pilot.util.parameters import get_server_url

logger = logging.getLogger(__name__)

__all__ = ["Communicator", "PandaServerCommunicator", "HarvesterCommunicator",  # noqa: F822 (module __getattr__)
           "ActCommunicator", "create_communicator", "server_api"]


#: backends imported only when a run uses them (a plain PanDA pilot never loads the file protocols)
_LAZY_BACKENDS = {"HarvesterCommunicator": "pilot.api.communicators.harvester",
                  "ActCommunicator": "pilot.api.communicators.act"}


def __getattr__(name: str) -> Any:
    """``from pilot.api.communicator import HarvesterCommunicator`` (and aCT) still works, on first use."""
    module = _LAZY_BACKENDS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


class Communicator(Protocol):
    """What a communicator backend offers.

    Optional attributes read by the job retriever: ``job_poll_interval`` (seconds between two job
    requests when none came) and ``max_job_requests`` (instead of ``-v``).
    """

    name: str

    def get_job(self, fields: dict) -> Optional[dict]:
        """A job definition, or None when there is no job (yet)."""

    def update_job(self, fields: dict, final: bool = False) -> dict:
        """Send a job update; return the reply (may hold ``command``). Raises CommunicationFailure."""

    def get_event_ranges(self, fields: dict) -> list:
        """Event ranges for an event-service job (fields: pandaID, jobsetID, taskID, nRanges)."""

    def update_event_ranges(self, ranges: list, version: int = 1) -> dict:
        """Report event-range states."""

    def checks(self) -> list:
        """Periodic tasks ``(name, period, func(ctx))`` the job monitor runs for this backend."""

    def close(self) -> None:
        """Called once when the pilot ends (after the last update)."""


def server_api() -> tuple[str, bool]:
    """``[Pilot] server_api`` (legacy or rest) and ``server_api_fallback``."""
    api = str(config.Pilot.get("server_api", "legacy") or "legacy").strip().lower()
    if api not in API_NAMES:
        logger.warning("unknown [Pilot] server_api %r: using legacy", api)
        api = "legacy"
    return api, bool(config.Pilot.get("server_api_fallback", True))


def create_communicator(args: Any, mainworkdir: str, http: HttpClient,
                        stop_event: Optional[threading.Event] = None,
                        job_lookup: Optional[Callable[[str], Any]] = None,
                        environ: Optional[Mapping[str, str]] = None) -> Any:
    """The backend for this run (see the module doc); ``job_lookup(jobid)`` gives a running job."""
    dirs = hv.HarvesterDirs.from_args(args, mainworkdir, environ=environ)
    api, fallback = server_api()

    def server(job_files: Optional[JobFiles]) -> PandaServerCommunicator:
        return PandaServerCommunicator(get_server_url(args), http,
                                       update_retries=int(config.Pilot.get("http_retries", 10) or 10),
                                       api=api, fallback=fallback, job_files=job_files)

    if hv.is_harvester_mode(args, environ):
        from pilot.api.communicators.harvester import HarvesterCommunicator

        mode = hv.submit_mode(args)
        logger.info("Harvester mode (%s): access point %s%s", mode, dirs.access_point,
                    "" if args.update_server else ", updates to files")
        return HarvesterCommunicator(
            dirs, mode=mode, server=server(None), file_updates=not args.update_server, job_lookup=job_lookup,
            stop_event=stop_event,
            poll_interval=float(hv.setting("job_poll_interval", default=1) or 1),
            max_requests=int(hv.setting("max_job_requests", default=60) or 60),
            heartbeat_interval=float(hv.setting("heartbeat_interval", default=60) or 60),
            events_timeout=float(hv.setting("eventranges_timeout", default=600) or 600))
    if not args.update_server:
        from pilot.api.communicators.act import ActCommunicator

        logger.info("no server updates (-z): updates go to %s", config.Pilot.heartbeat_message)
        return ActCommunicator(dirs.main_dir, JobFiles(dirs),
                               heartbeat_name=str(config.Pilot.get("heartbeat_message", "heartbeat.json")))
    return server(JobFiles(dirs))
