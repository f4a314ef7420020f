"""Job definitions placed next to the pilot: ``pandaJobData.out``, ``HPCJobs.json`` and Harvester's sub-directories."""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

from pilot.util import harvester as hv

logger = logging.getLogger(__name__)


class JobFiles:
    """Find, read and remove pre-placed job definitions (compat §10), one at a time."""

    def __init__(self, dirs: hv.HarvesterDirs, use_jobs_list: bool = False) -> None:
        self.dirs = dirs
        self.use_jobs_list = use_jobs_list  # follow worker_pandaids.json into <access point>/<PandaID>/
        self.last_path = ""

    def paths(self) -> list:
        """The places tried, in order."""
        pandaids = hv.read_pandaids(self.dirs.top(self.dirs.names.jobs_list)) if self.use_jobs_list else []
        return self.dirs.definition_paths(pandaids)

    def take(self) -> Optional[dict]:
        """The first waiting definition (its file is removed); None when there is none (yet)."""
        for path in self.paths():
            if not os.path.isfile(path):
                continue
            try:
                definition = hv.read_job_definition(path)
            except hv.IncompleteFile as exc:
                logger.info("%s is not complete yet (%s): reading it again later", path, exc)
                return None
            except OSError as exc:
                logger.warning("cannot read the job definition %s: %s", path, exc)
                continue
            if definition:
                logger.info("read job %s from %s", definition.get("PandaID", "?"), path)
                self.last_path = path
                return definition
            logger.warning("%s held no job definition (removed)", path)
        return None

    @staticmethod
    def pandaid(definition: Any) -> str:
        """The PandaID of a definition ('' when it has none)."""
        return str((definition or {}).get("PandaID", "") or "")
