"""Data API clients for event-service files (event ranges read from / written to object stores).

``StageInESClient`` resolves the storage of an input given by a storage id in ``prodDBlockToken``
(``<id>`` or ``<id>/<path convention>``) before the normal stage-in; its default activity is
``es_events_read``. ``StageOutESClient`` stages out with the activities ``es_events`` then
``es_failover``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pilot.api.data import StageInClient, StageOutClient
from pilot.common.exception import PilotException

if TYPE_CHECKING:
    from pilot.info.filespec import FileSpec

logger = logging.getLogger(__name__)


def storage_id_of(fspec: FileSpec) -> int:
    """The numeric storage id in ``prodDBlockToken``/``storage_token`` (``id`` or ``id/convention``), else 0."""
    for token in (fspec.prodDBlockToken, fspec.storage_token):
        head = str(token or "").split("/", 1)[0].strip()
        if head.isdigit():
            return int(head)
    return 0


class StageInESClient(StageInClient):
    """Stage-in of event-service inputs."""

    def transfer(self, files: list, activity: Any = "es_events_read", **kwargs: Any) -> list:
        """Resolve storage ids to ddmendpoints, then stage in as usual."""
        for fspec in files:
            if isinstance(fspec, dict):
                continue
            sid = storage_id_of(fspec)
            if sid and not fspec.ddmendpoint:
                try:
                    fspec.ddmendpoint = self.infosys.get_ddmendpoint(sid)
                except PilotException as exc:
                    logger.warning("cannot resolve storage id %s of %s: %s", sid, fspec.lfn, exc.diag)
        return super().transfer(files, activity=activity, **kwargs)


class StageOutESClient(StageOutClient):
    """Stage-out of event-service outputs (object store first, then the failover storage)."""

    def transfer(self, files: list, activity: Any = None, **kwargs: Any) -> list:
        """Stage out with ``es_events`` then ``es_failover`` unless told otherwise."""
        return super().transfer(files, activity=activity or ["es_events", "es_failover"], **kwargs)
