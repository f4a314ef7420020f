"""Communicator API: one interface for asking for jobs and reporting them, whatever sits on the other side.

The job control only calls a :class:`Communicator`; the backend decides whether that is the PanDA
server over HTTP(S) or files in a shared directory (Harvester, aCT).
"""

from __future__ import annotations

import json
import logging
from typing import Optional, Protocol

from pilot.common.exception import CommunicationFailure
from pilot.util.https import HttpClient

logger = logging.getLogger(__name__)


class Communicator(Protocol):
    """What a communicator backend offers."""

    name: str

    def get_job(self, fields: dict) -> Optional[dict]:
        """A job definition, or None when there is no job."""

    def update_job(self, fields: dict, final: bool = False) -> dict:
        """Send a job update; return the reply (may hold ``command``). Raises CommunicationFailure."""

    def get_event_ranges(self, fields: dict) -> list:
        """Event ranges for an event-service job."""

    def update_event_ranges(self, ranges: list, version: int = 1) -> dict:
        """Report event-range states."""


class PandaServerCommunicator:
    """The legacy PanDA server protocol: form-encoded POST to ``<server>/server/panda/<method>``."""

    name = "panda"

    def __init__(self, base_url: str, http: HttpClient, update_retries: int = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.update_retries = update_retries

    def _call(self, method: str, data: dict, retries: Optional[int] = None) -> dict:
        return self.http.post_form(f"{self.base_url}/server/panda/{method}", data, retries=retries)

    def get_job(self, fields: dict) -> Optional[dict]:
        reply = self._call("getJob", fields)
        status = str(reply.get("StatusCode", ""))
        if status != "0" or not reply.get("PandaID"):
            logger.info("no job from the server (StatusCode=%s %s)", status, reply.get("errorDialog", ""))
            return None
        return reply

    def update_job(self, fields: dict, final: bool = False) -> dict:
        return self._call("updateJob", fields, retries=self.update_retries if final else None)

    def get_event_ranges(self, fields: dict) -> list:
        reply = self._call("getEventRanges", fields)
        if str(reply.get("StatusCode", "")) != "0":
            raise CommunicationFailure(f"getEventRanges failed: {reply}")
        ranges = reply.get("eventRanges") or []
        if isinstance(ranges, str):
            ranges = json.loads(ranges) if ranges.strip() else []
        return ranges

    def update_event_ranges(self, ranges: list, version: int = 1) -> dict:
        return self._call("updateEventRanges", {"eventRanges": json.dumps(ranges), "version": version})

    def get_proxy(self, role: str) -> dict:
        """getProxy: the user's proxy for an analysis job."""
        return self._call("getProxy", {"role": role})

    def get_key_pair(self, public_name: str, private_name: str) -> dict:
        """getKeyPair: object-store keys."""
        return self._call("getKeyPair", {"publicKeyName": public_name, "privateKeyName": private_name})

    def get_status(self, ids: list) -> dict:
        """getStatus of jobs."""
        return self._call("getStatus", {"ids": ",".join(str(i) for i in ids)})
