"""Queue (schedconfig) and storage (DDM endpoint) data served by the dev server.

Shapes, as the pilots parse them:

* PanDA cache ``/cache/schedconfig/<queue>.all.json`` (Pilot 2/3 ``queuedata_url``): the bare queue
  dictionary; the pilot wraps it as ``{queue: data}`` itself.
* CRIC ``/api/atlas/pandaqueue/query/?json&pandaqueue[]=Q`` (Pilot 2 ``queues_url``) and
  ``/cache/schedconfig/pandaqueues.json``: a dictionary queue name -> queue dictionary.
  ``/cache/schedconfig/<queue>.json`` (Pilot 3 ``queues_url``) gives the bare dictionary.
* CRIC ``/api/atlas/ddmendpoint/query/?json&ddmendpoint[]=X`` (Pilot 2 ``storages_url``) and
  ``/cache/ddmendpoints.json`` (Pilot 3): a dictionary endpoint name -> storage dictionary.
* Our own pilot: ``/queuedata/<queue>.json`` (bare) and ``/storagedata.json`` (dictionary).

The default queue ``DEV_QUEUE`` uses the ``mv`` copytool for every activity against the default
deterministic storage ``LOCAL_DISK``, whose protocols are ``file://`` URLs into the storage directory.
"""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional
from urllib.parse import parse_qs

from .routing import Reply, Request, Route, error

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .app import App

DEFAULT_QUEUE = "DEV_QUEUE"
DEFAULT_DDMENDPOINT = "LOCAL_DISK"
DEFAULT_SITE = "DEV_SITE"
STORAGE_DIR_PLACEHOLDER = "@STORAGE_DIR@"
STORAGE_ACTIVITIES = ("read_lan", "read_wan", "write_lan", "write_wan", "delete_lan", "delete_wan",
                      "third_party_copy_read", "third_party_copy_write", "pr", "pw", "pl")


def default_queuedata(name: str = DEFAULT_QUEUE, ddmendpoint: str = DEFAULT_DDMENDPOINT) -> dict[str, Any]:
    """Return the schedconfig dictionary of the default development queue."""
    activities = {"pr": [ddmendpoint], "pw": [ddmendpoint], "pl": [ddmendpoint], "pls": [ddmendpoint],
                  "read_lan": [ddmendpoint], "write_lan": [ddmendpoint]}
    return {
        "nickname": name, "name": name, "panda_resource": name, "panda_queue": name,
        "atlas_site": DEFAULT_SITE, "site": DEFAULT_SITE, "gstat": DEFAULT_SITE, "cloud": "DEV", "country": "dev",
        "state": "ACTIVE", "status": "online", "type": "unified", "resource_type": "SCORE",
        "capability": "score", "is_cvmfs": False, "appdir": "", "cmtconfig": "",
        "maxtime": 86400, "timefloor": 0, "maxwdir": 20000, "maxinputsize": 14336, "maxrss": 2000,
        "maxmemory": 2000, "corecount": 1, "pledgedcpu": 0, "zip_time_gap": 0,
        "copytools": {"mv": {"setup": ""}},
        "acopytools": {"pr": ["mv"], "pw": ["mv"], "pl": ["mv"], "pls": ["mv"]},
        "acopytools_schemas": {},
        "astorages": activities,
        "aprotocols": {},
        "direct_access_lan": False, "direct_access_wan": False,
        "allow_lan": True, "allow_wan": False, "use_pcache": False,
        "container_type": "", "container_options": "", "catchall": "", "environ": "",
        "params": {}, "harvester": "", "pilot_manager": "local", "wnconnectivity": "full",
    }


def default_storagedata(storage_dir: str, name: str = DEFAULT_DDMENDPOINT, pk: int = 1) -> dict[str, Any]:
    """Return the CRIC-style description of the local ``file://`` storage rooted at ``storage_dir``."""
    root = str(Path(storage_dir).resolve())
    protocol = {"endpoint": "file://", "path": root, "flavour": "POSIX", "id": pk}
    return {
        "name": name, "id": pk, "type": "DISK", "token": "", "is_deterministic": True, "state": "ACTIVE",
        "site": DEFAULT_SITE, "rc_site": DEFAULT_SITE, "is_tape": False, "resource": {},
        "arprotocols": {activity: [dict(protocol)] for activity in STORAGE_ACTIVITIES},
        "rprotocols": {str(pk): {**protocol, "activities": [[a, 1] for a in STORAGE_ACTIVITIES], "settings": {}}},
    }


def _keyed(data: Any, key: str) -> dict[str, Any]:
    """Accept a single record (with its ``key`` field) or a dictionary name -> record."""
    if isinstance(data, dict) and isinstance(data.get(key), str):
        return {data[key]: data}
    if isinstance(data, dict) and all(isinstance(value, dict) for value in data.values()):
        return dict(data)
    raise ValueError(f"expected one record with '{key}' or a dictionary of records")


def load_records(path: str, key: str, storage_dir: str) -> dict[str, Any]:
    """Read queue or storage data from a JSON file (``@STORAGE_DIR@`` is replaced by the storage dir)."""
    text = Path(path).read_text(encoding="utf-8").replace(STORAGE_DIR_PLACEHOLDER, str(Path(storage_dir).resolve()))
    return _keyed(json.loads(text), key)


class InfoData:
    """The queues and storages a running server publishes; changeable at run time."""

    def __init__(self, queues: dict[str, Any], storages: dict[str, Any]) -> None:
        """Start from the given dictionaries (name -> record)."""
        self._lock = threading.Lock()
        self._initial = (copy.deepcopy(queues), copy.deepcopy(storages))
        self._queues = copy.deepcopy(queues)
        self._storages = copy.deepcopy(storages)

    @classmethod
    def create(cls, storage_dir: str, queue: Optional[str] = None, queuedata: Optional[str] = None,
               storagedata: Optional[str] = None) -> "InfoData":
        """Build from the defaults, or from files when given."""
        queues = load_records(queuedata, "nickname", storage_dir) if queuedata else \
            {(queue or DEFAULT_QUEUE): default_queuedata(queue or DEFAULT_QUEUE)}
        storages = load_records(storagedata, "name", storage_dir) if storagedata else \
            {DEFAULT_DDMENDPOINT: default_storagedata(storage_dir)}
        return cls(queues, storages)

    def reset(self) -> None:
        """Go back to the data the server started with."""
        with self._lock:
            self._queues = copy.deepcopy(self._initial[0])
            self._storages = copy.deepcopy(self._initial[1])

    def queue(self, name: str) -> Optional[dict[str, Any]]:
        """Return one queue's data or None."""
        with self._lock:
            data = self._queues.get(name)
            return copy.deepcopy(data) if data is not None else None

    def queues(self, names: Iterable[str] = ()) -> dict[str, Any]:
        """Return the named queues (all when no names are given)."""
        wanted = {name for name in names if name}
        with self._lock:
            return copy.deepcopy({k: v for k, v in self._queues.items() if not wanted or k in wanted})

    def storages(self, names: Iterable[str] = ()) -> dict[str, Any]:
        """Return the named storages (all when no names are given)."""
        wanted = {name for name in names if name}
        with self._lock:
            return copy.deepcopy({k: v for k, v in self._storages.items() if not wanted or k in wanted})

    def set_queue(self, name: str, data: dict[str, Any], merge: bool = True) -> dict[str, Any]:
        """Create or change a queue; ``merge`` updates fields, otherwise the record is replaced."""
        with self._lock:
            record = dict(self._queues.get(name, {})) if merge else {}
            record.update(copy.deepcopy(data))
            record.setdefault("nickname", name)
            self._queues[name] = record
            return copy.deepcopy(record)

    def set_storage(self, name: str, data: dict[str, Any], merge: bool = True) -> dict[str, Any]:
        """Create or change a storage; ``merge`` updates fields, otherwise the record is replaced."""
        with self._lock:
            record = dict(self._storages.get(name, {})) if merge else {}
            record.update(copy.deepcopy(data))
            record.setdefault("name", name)
            self._storages[name] = record
            return copy.deepcopy(record)


def _query_list(request: Request, *keys: str) -> list[str]:
    """Collect names given as ``key[]=a&key[]=b`` or ``key=a,b`` in the query string."""
    parsed = parse_qs(request.query, keep_blank_values=True)
    names: list[str] = []
    for key in keys:
        for value in parsed.get(key, []):
            names.extend(part for part in value.split(",") if part)
    return names


def _schedconfig(app: "App", request: Request) -> Reply:
    """Serve one queue's schedconfig (bare dict); ``pandaqueues`` gives all queues keyed by name."""
    name = request.groups["queue"]
    if name == "pandaqueues" and not request.groups.get("all"):
        return Reply(200, app.info.queues())
    data = app.info.queue(name)
    if data is None:
        return error(404, f"unknown queue {name}")
    return Reply(200, data)


def _queuedata(app: "App", request: Request) -> Reply:
    """Serve one queue's data for our own pilot (bare dict)."""
    data = app.info.queue(request.groups["queue"])
    return Reply(200, data) if data is not None else error(404, f"unknown queue {request.groups['queue']}")


def _cric_queues(app: "App", request: Request) -> Reply:
    """CRIC-style queue query: dictionary of queues, filtered by ``pandaqueue[]``/``panda_queue``."""
    return Reply(200, app.info.queues(_query_list(request, "pandaqueue[]", "pandaqueue", "panda_queue")))


def _cric_storages(app: "App", request: Request) -> Reply:
    """CRIC-style storage query: dictionary of endpoints, filtered by ``ddmendpoint[]``/``ddmendpoint``."""
    return Reply(200, app.info.storages(_query_list(request, "ddmendpoint[]", "ddmendpoint")))


def _all_storages(app: "App", request: Request) -> Reply:
    """Every storage keyed by name."""
    return Reply(200, app.info.storages())


_Q = r"(?P<queue>[A-Za-z0-9_.\-]+?)"
_CRIC = r"/(?:api/atlas|request)/{}/query(?:/list)?/?"


def _info_route(pattern: str, handler: Any, name: str) -> Route:
    """A GET route of an information endpoint (recorded in the requests table, injectable by name)."""
    return Route(("GET",), pattern, handler, name=name, record=True)


ROUTES = [
    _info_route(r"/cache/schedconfig/" + _Q + r"(?P<all>\.all)?\.json", _schedconfig, "schedconfig"),
    _info_route(r"/queuedata/" + _Q + r"\.json", _queuedata, "queuedata"),
    _info_route(_CRIC.format("pandaqueue"), _cric_queues, "cric_queues"),
    _info_route(_CRIC.format("ddmendpoint"), _cric_storages, "cric_storages"),
    _info_route(r"/cache/ddmendpoints\.json", _all_storages, "storagedata"),
    _info_route(r"/storagedata\.json", _all_storages, "storagedata"),
]
