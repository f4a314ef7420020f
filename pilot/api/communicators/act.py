"""The aCT / NorduGrid backend (``-z`` without Harvester): updates go to ``heartbeat.json``, jobs come from files.

ARC places the job definition (``pandaJobData.out``) next to the pilot and reads back, when the
job ends, the last update dictionary from ``heartbeat.json`` in the pilot main dir; the outputs
leave through the ``mv`` copytool, which lists them in ``output.list`` for ARC to upload. The pilot
never talks to the PanDA server in this mode.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

from pilot.common.exception import CommunicationFailure
from pilot.util.filehandling import write_json_atomic

logger = logging.getLogger(__name__)


class ActCommunicator:
    """Jobs from pre-placed files, updates into ``heartbeat.json``."""

    name = "act"

    def __init__(self, main_dir: str, job_files: Any, heartbeat_name: str = "heartbeat.json") -> None:
        self.path = os.path.join(main_dir, heartbeat_name)
        self.job_files = job_files

    def get_job(self, fields: dict) -> Optional[dict]:
        """The pre-placed job definition (None when there is none: the server is not asked)."""
        definition = self.job_files.take() if self.job_files is not None else None
        if not definition:
            logger.info("no job definition file next to the pilot (-z: the server is not asked)")
        return definition

    def update_job(self, fields: dict, final: bool = False) -> dict:
        """Replace heartbeat.json with this update."""
        try:
            write_json_atomic(self.path, fields)
        except OSError as exc:
            raise CommunicationFailure(f"cannot write {self.path}: {exc}") from exc
        logger.debug("wrote the %s update to %s", "final" if final else "heartbeat", self.path)
        return {"StatusCode": 0, "command": None}

    def get_event_ranges(self, fields: dict) -> list:
        raise CommunicationFailure("event ranges are not available without a server (-z)")

    def update_event_ranges(self, ranges: list, version: int = 1) -> dict:
        raise CommunicationFailure("event ranges are not available without a server (-z)")

    def checks(self) -> list:
        return []

    def close(self) -> None:
        """Nothing to do at exit."""
