"""The PanDA server backend: both server generations behind one interface.

* ``legacy``: Pilot 2's form-encoded POST to ``<server>/server/panda/<method>`` (compat §4).
* ``rest``: the REST API of panda-server 1.0 and later, JSON POST to ``<server>/api/v1/...``
  (see :mod:`pilot.api.communicators.rest`).

``[Pilot] server_api`` picks the generation tried first; with ``server_api_fallback`` a call the
server refuses as unknown (HTTP 403, 404, 405, 410 or 501, or a reply that is not of the
generation's shape) is repeated in the other generation, which is then used for the rest of the run.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from typing import Any, Callable, Optional

from pilot.api.communicators import rest
from pilot.common.exception import CommunicationFailure
from pilot.util.https import HttpClient, HttpError

logger = logging.getLogger(__name__)

LEGACY = "legacy"
REST = "rest"
API_NAMES = (LEGACY, REST)
#: HTTP statuses of a server that does not know the call (the other generation may)
UNSUPPORTED_STATUSES = {403, 404, 405, 410, 501}


class Unsupported(CommunicationFailure):
    """The server does not offer this call in this generation of the protocol."""


def other(api: str) -> str:
    return REST if api == LEGACY else LEGACY


class PandaServerCommunicator:
    """Jobs and updates through the PanDA server (legacy or REST, with fallback)."""

    name = "panda"

    def __init__(self, base_url: str, http: HttpClient, update_retries: int = 10, api: str = LEGACY,
                 fallback: bool = True, job_files: Any = None) -> None:
        if api not in API_NAMES:
            raise ValueError(f"unknown server API {api!r} (use {' or '.join(API_NAMES)})")
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.update_retries = update_retries
        self.api = api
        self.fallback = fallback
        self.job_files = job_files  # pre-placed job definitions, read before asking the server
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the calls
    def get_job(self, fields: dict) -> Optional[dict]:
        """A pre-placed job definition, else getJob / acquire_jobs; None when there is no job."""
        if self.job_files is not None:
            definition = self.job_files.take()
            if definition:
                return definition
        return self._call("job request", self._legacy_get_job, self._rest_get_job, fields)

    def update_job(self, fields: dict, final: bool = False) -> dict:
        """updateJob / update_job; the reply in the legacy shape (``command`` may be set)."""
        retries = self.update_retries if final else None
        return self._call("job update", self._legacy_update_job, self._rest_update_job, fields, retries)

    def get_event_ranges(self, fields: dict) -> list:
        """getEventRanges / acquire_event_ranges (fields in the legacy names: pandaID, jobsetID, ...)."""
        return self._call("event range request", self._legacy_get_event_ranges, self._rest_get_event_ranges,
                          fields)

    def update_event_ranges(self, ranges: list, version: int = 1) -> dict:
        """updateEventRanges / update_event_ranges."""
        return self._call("event range update", self._legacy_update_event_ranges,
                          self._rest_update_event_ranges, ranges, version)

    def get_status(self, ids: list) -> dict:
        """getStatus / get_job_status, in the legacy reply shape."""
        return self._call("job status", self._legacy_get_status, self._rest_get_status, ids)

    def update_worker_status(self, worker_id: str, harvester_id: str, status: str, node_id: str = "") -> dict:
        """updateWorkerPilotStatus / update_worker_status (Pilot 3: ``started`` / ``finished``)."""
        return self._call("worker status", self._legacy_worker_status, self._rest_worker_status,
                          worker_id, harvester_id, status, node_id)

    def get_proxy(self, role: str) -> dict:
        """getProxy / creds/get_proxy: the user's proxy for an analysis job, in the legacy reply shape."""
        return self._call("proxy request", self._legacy_get_proxy, self._rest_get_proxy, role)

    def get_key_pair(self, public_name: str, private_name: str) -> dict:
        """getKeyPair / creds/get_key_pair: object-store keys, in the legacy reply shape."""
        return self._call("key pair request", self._legacy_get_key_pair, self._rest_get_key_pair,
                          public_name, private_name)

    def checks(self) -> list:
        """No periodic tasks."""
        return []

    def close(self) -> None:
        """Nothing to release (the HTTP client belongs to the workflow)."""

    # ------------------------------------------------------------------ generation switch
    def _call(self, what: str, legacy: Callable, rest_fn: Callable, *args: Any) -> Any:
        with self._lock:
            api = self.api
        first = legacy if api == LEGACY else rest_fn
        try:
            return first(*args)
        except Unsupported as exc:
            if not self.fallback:
                raise
            logger.warning("%s: the server refused the %s protocol (%s): trying %s", what, api, exc, other(api))
        second = rest_fn if api == LEGACY else legacy
        result = second(*args)
        with self._lock:
            if self.api == api:
                logger.info("the PanDA server speaks the %s protocol: using it from now on", other(api))
                self.api = other(api)
        return result

    # ------------------------------------------------------------------ legacy
    def _legacy(self, method: str, data: dict, retries: Optional[int] = None, resend: bool = True) -> dict:
        url = f"{self.base_url}/server/panda/{method}"
        try:
            return self.http.post_form(url, data, retries=retries, resend=resend)
        except HttpError as exc:
            if exc.status in UNSUPPORTED_STATUSES:
                raise Unsupported(f"{method}: HTTP {exc.status}") from exc
            raise
        except CommunicationFailure as exc:
            if "forbidden" in str(exc).lower():  # a REST-only server refusing the method in plain text
                raise Unsupported(f"{method}: {exc}") from exc
            raise

    def _legacy_get_job(self, fields: dict) -> Optional[dict]:
        reply = self._legacy("getJob", fields, resend=False)  # hands out work: never sent twice
        if rest.is_envelope(reply):
            raise Unsupported("getJob answered in the REST shape")
        status = str(reply.get("StatusCode", ""))
        if status != "0" or not reply.get("PandaID"):
            logger.info("no job from the server (StatusCode=%s %s)", status, reply.get("errorDialog", ""))
            return None
        return reply

    def _legacy_update_job(self, fields: dict, retries: Optional[int] = None) -> dict:
        return self._legacy("updateJob", fields, retries=retries)

    def _legacy_get_event_ranges(self, fields: dict) -> list:
        reply = self._legacy("getEventRanges", fields, resend=False)
        if str(reply.get("StatusCode", "")) != "0":
            raise CommunicationFailure(f"getEventRanges failed: {reply}")
        ranges = reply.get("eventRanges") or []
        if isinstance(ranges, str):
            ranges = json.loads(ranges) if ranges.strip() else []
        return ranges

    def _legacy_update_event_ranges(self, ranges: list, version: int) -> dict:
        return self._legacy("updateEventRanges", {"eventRanges": json.dumps(ranges), "version": version})

    def _legacy_get_status(self, ids: list) -> dict:
        return self._legacy("getStatus", {"ids": ",".join(str(i) for i in ids)})

    def _legacy_get_proxy(self, role: str) -> dict:
        return self._legacy("getProxy", {"role": role})

    def _legacy_get_key_pair(self, public_name: str, private_name: str) -> dict:
        return self._legacy("getKeyPair", {"publicKeyName": public_name, "privateKeyName": private_name})

    def _legacy_worker_status(self, worker_id: str, harvester_id: str, status: str, node_id: str) -> dict:
        data = {"workerID": worker_id, "harvesterID": harvester_id, "status": status}
        if node_id:
            data["node_id"] = node_id
        return self._legacy("updateWorkerPilotStatus", data)

    # ------------------------------------------------------------------ REST
    def _rest(self, path: str, params: dict, retries: Optional[int] = None, method: str = "POST",
              resend: bool = True) -> dict:
        url = f"{self.base_url}/{path}"
        try:
            if method == "GET":
                query = urllib.parse.urlencode({k: json.dumps(v) if isinstance(v, (list, dict)) else v
                                                for k, v in params.items()})
                raw = self.http.request(f"{url}?{query}", None, method="GET", retries=retries,
                                        headers={"Accept": "application/json"})
                reply: Any = json.loads(raw) if raw.strip() else None
            else:
                reply = self.http.post_json(url, params, retries=retries, resend=resend)
        except HttpError as exc:
            if exc.status in UNSUPPORTED_STATUSES:
                raise Unsupported(f"{path}: HTTP {exc.status}") from exc
            raise
        except ValueError as exc:
            raise Unsupported(f"{path}: the reply is not JSON") from exc
        if not rest.is_envelope(reply):
            raise Unsupported(f"{path}: the reply is not a REST reply: {str(reply)[:80]!r}")
        return reply

    def _rest_get_job(self, fields: dict) -> Optional[dict]:
        reply = self._rest(f"{rest.PILOT}/acquire_jobs", rest.acquire_jobs_params(fields), resend=False)
        job = rest.job_from_reply(reply)
        if job is None:
            logger.info("no job from the server (%s)", reply.get("message") or "no job in the reply")
        return job

    def _rest_update_job(self, fields: dict, retries: Optional[int] = None) -> dict:
        reply = self._rest(f"{rest.PILOT}/update_job", rest.update_job_params(fields), retries=retries)
        if not reply.get("success"):
            logger.warning("update_job of job %s refused: %s", fields.get("jobId"), reply.get("message"))
        return rest.update_reply(reply)

    def _rest_get_event_ranges(self, fields: dict) -> list:
        reply = self._rest(f"{rest.EVENT}/acquire_event_ranges", rest.event_range_params(fields), resend=False)
        if not reply.get("success"):
            raise CommunicationFailure(f"acquire_event_ranges failed: {reply.get('message')}")
        data = reply.get("data") or []
        return json.loads(data) if isinstance(data, str) else list(data)

    def _rest_update_event_ranges(self, ranges: list, version: int) -> dict:
        reply = self._rest(f"{rest.EVENT}/update_event_ranges",
                           {"event_ranges": json.dumps(ranges), "version": int(version)})
        data = rest.reply_data(reply)
        return {"StatusCode": 0 if reply.get("success") else 30, "Returns": data.get("Returns"),
                "Command": data.get("Commands"), "errorDialog": reply.get("message", "")}

    def _rest_get_status(self, ids: list) -> dict:
        reply = self._rest(f"{rest.PILOT}/get_job_status", {"job_ids": [int(i) for i in ids]}, method="GET")
        return rest.status_reply(reply)

    def _rest_worker_status(self, worker_id: str, harvester_id: str, status: str, node_id: str) -> dict:
        params = {"worker_id": str(worker_id), "harvester_id": str(harvester_id), "status": status}
        if node_id:
            params["node_id"] = node_id
        reply = self._rest(f"{rest.PILOT}/update_worker_status", params)
        return {"StatusCode": 0 if reply.get("success") else 30, "errorDialog": reply.get("message", "")}

    def _rest_get_proxy(self, role: str) -> dict:
        reply = self._rest(f"{rest.CREDS}/get_proxy", {"role": role} if role else {}, method="GET")
        return rest.proxy_reply(reply)

    def _rest_get_key_pair(self, public_name: str, private_name: str) -> dict:
        reply = self._rest(f"{rest.CREDS}/get_key_pair",
                           {"public_key_name": public_name, "private_key_name": private_name}, method="GET")
        return rest.key_pair_reply(reply)
