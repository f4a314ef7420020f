"""Where queue and storage data come from: local files, the PanDA schedconfig cache, CVMFS, CRIC.

:class:`ExtInfoProvider` tries its sources in priority order and returns the first usable answer:

queue data
    1. an explicit local file (``queuedata_path``)
    2. the cache file ``<cache_dir>/queuedata.json`` if younger than ``cache_time`` (3 h)
    3. ``queuedata_url`` (``--queuedata-url``, else ``[Information] queuedata_url``; ``{pandaqueue}`` is
       replaced by the queue name) - the answer is written to the cache file
    4. the CVMFS dump (``[Information] queuedata_cvmfs`` / ``queues_cvmfs``)
    5. the CRIC URL (``[Information] queues_url``)

storage data: an explicit file, the cache ``<cache_dir>/cric_ddmendpoints.json``, ``storagedata_url``
(``--storagedata-url``, else ``[Information] storages_url``), the CVMFS dump (``storages_cvmfs``).

URLs are read through :class:`pilot.util.https.HttpClient` (``http(s)://``) with up to ``nretry``
attempts; ``file://`` URLs and plain paths are read from disk.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.info.storagedata import parse_storages

logger = logging.getLogger(__name__)

DEFAULT_CACHE_TIME = 3 * 3600


def config_value(section: str, key: str, default: Any = None) -> Any:
    """``config.<section>.<key>`` or ``default`` when the config (or the key) is not available."""
    try:
        from pilot.util.config import config  # imported late: the config module loads files
    except Exception:  # pragma: no cover - config module missing or broken
        return default
    try:
        value = getattr(getattr(config, section), key)
    except Exception:
        return default
    return default if value in (None, "") else value


@dataclass
class Source:
    """One place to read data from."""

    label: str
    location: str
    nretry: int = 1
    cache_file: str = ""  # write a successful answer here
    max_age: float = 0  # for cache files: accept only when younger (0 = any age)


class ExtInfoProvider:
    """Load queue and storage data from files and URLs, with a file cache."""

    def __init__(self, cache_time: float = DEFAULT_CACHE_TIME, cache_dir: Optional[str] = None,
                 queuedata_url: Optional[str] = None, storagedata_url: Optional[str] = None,
                 queuedata_path: Optional[str] = None, storagedata_path: Optional[str] = None,
                 http: Any = None, nretry: int = 3, retry_wait: float = 2.0, timeout: float = 60,
                 use_config: bool = True) -> None:
        self.cache_time = cache_time
        self.cache_dir = cache_dir
        self.queuedata_url = queuedata_url
        self.storagedata_url = storagedata_url
        self.queuedata_path = queuedata_path
        self.storagedata_path = storagedata_path
        self.http = http
        self.nretry = nretry
        self.retry_wait = retry_wait
        self.timeout = timeout
        self.use_config = use_config  # False: only the explicit sources and the cache (tests, Harvester)
        self.stop_event = threading.Event()  # set to abandon retries (pilot stopping)
        self._memo: dict = {}
        self._lock = threading.Lock()

    def configure(self, **settings: Any) -> None:
        """Change settings given with a non-None value (e.g. ``queuedata_url=args.queuedata_url``)."""
        for key, value in settings.items():
            if value is None:
                continue
            if not hasattr(self, key):
                raise TypeError(f"unknown information source setting {key!r}")
            setattr(self, key, value)
        self._memo.clear()

    # ------------------------------------------------------------------ high-level API
    def resolve_queuedata(self, pandaqueue: str, **kwargs: Any) -> dict:
        """``{pandaqueue: raw record}``; raises PilotException(QUEUEDATA) when no source answers."""
        errors = []
        for source in self.queuedata_sources(pandaqueue):
            try:
                data = self._read(source)
            except _Unavailable as exc:
                if str(exc):
                    errors.append(f"{source.label}: {exc}")
                continue
            record = extract_queue(data, pandaqueue, strict=source.label == "CACHE")
            if record is None:
                errors.append(f"{source.label}: no record for queue {pandaqueue} in {source.location}")
                continue
            logger.info("queuedata for %s loaded from %s (%s)", pandaqueue, source.label, source.location)
            if source.cache_file:
                self._write_cache(source, record)
            return {pandaqueue: record}
        raise PilotException(f"failed to load queuedata for {pandaqueue}: " + ("; ".join(errors) or "no source"),
                             code=ErrorCodes.QUEUEDATA)

    def resolve_storage_data(self, ddmendpoints: Any = None, **kwargs: Any) -> dict:
        """``{ddmendpoint: raw record}`` (all known storages); {} when no source is configured/available."""
        errors = []
        for source in self.storage_sources():
            try:
                data = self._read(source)
                storages = parse_storages(data)
            except _Unavailable as exc:
                if str(exc):
                    errors.append(f"{source.label}: {exc}")
                continue
            except ValueError as exc:
                errors.append(f"{source.label}: {exc}")
                continue
            logger.info("storage data (%d endpoints) loaded from %s (%s)", len(storages), source.label,
                        source.location)
            if source.cache_file:
                self._write_cache(source, data)
            return storages
        if errors:
            logger.warning("no storage data: %s", "; ".join(errors))
        return {}

    # ------------------------------------------------------------------ sources
    def get_cache_dir(self) -> str:
        """The directory for cache files: setting, else ``[Information] cache_dir``, else $PILOT_HOME or cwd."""
        return (self.cache_dir or config_value("Information", "cache_dir")
                or os.environ.get("PILOT_HOME") or os.getcwd())

    def queuedata_sources(self, pandaqueue: str) -> list:
        """The queue data sources in priority order."""
        cache_file = os.path.join(self.get_cache_dir(),
                                  os.path.basename(config_value("Information", "queuedata_cache", "queuedata.json")))
        url = self.queuedata_url or self._config("queuedata_url")
        sources = []
        if self.queuedata_path:
            sources.append(Source("LOCAL", self.queuedata_path))
        sources.append(Source("CACHE", cache_file, max_age=self.cache_time))
        if url:
            sources.append(Source("PANDA", _fill(url, pandaqueue), nretry=self.nretry, cache_file=cache_file))
        for key in ("queuedata_cvmfs", "queues_cvmfs"):
            path = self._config(key)
            if path:
                sources.append(Source("CVMFS", _cvmfs(path)))
                break
        cric = self._config("queues_url")
        if cric:
            sources.append(Source("CRIC", _fill(cric, pandaqueue), nretry=self.nretry, cache_file=cache_file))
        return sources

    def storage_sources(self) -> list:
        """The storage data sources in priority order."""
        cache_file = os.path.join(self.get_cache_dir(), os.path.basename(
            config_value("Information", "storages_cache", "cric_ddmendpoints.json")))
        url = self.storagedata_url or self._config("storages_url")
        sources = []
        if self.storagedata_path:
            sources.append(Source("LOCAL", self.storagedata_path))
        sources.append(Source("CACHE", cache_file, max_age=self.cache_time))
        if url:
            sources.append(Source("URL", url, nretry=self.nretry, cache_file=cache_file))
        path = self._config("storages_cvmfs")
        if path:
            sources.append(Source("CVMFS", _cvmfs(path)))
        return sources

    def _config(self, key: str) -> Any:
        return config_value("Information", key) if self.use_config else None

    # ------------------------------------------------------------------ reading
    def _read(self, source: Source) -> Any:
        """Decoded JSON of a source; raise _Unavailable (empty message = silently absent)."""
        loc = source.location
        if source.max_age:
            if not _fresh(loc, source.max_age) or not self._cache_matches(source):
                raise _Unavailable("")
        key = (source.label, loc)
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        raw = self._fetch(source)
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise _Unavailable(f"not JSON ({exc}): {raw[:80]!r}") from None
        if isinstance(data, dict) and set(data) <= {"error", "message", "status"} and data.get("error"):
            raise _Unavailable(f"error reply: {data}")
        with self._lock:
            self._memo[key] = data
        return data

    def _fetch(self, source: Source) -> bytes:
        loc = source.location
        if not loc.startswith(("http://", "https://")):
            path = loc[len("file://"):] if loc.startswith("file://") else loc
            if not os.path.exists(path):
                raise _Unavailable("" if source.label in ("CACHE", "CVMFS") else f"no such file {path}")
            try:
                with open(path, "rb") as handle:
                    return handle.read()
            except OSError as exc:
                raise _Unavailable(f"cannot read {path}: {exc}") from None
        last: Exception = Exception("not tried")
        for attempt in range(1, max(1, source.nretry) + 1):
            if attempt > 1:
                delay = self.retry_wait * (2 ** (attempt - 2)) * random.uniform(0.5, 1.5)
                if self.stop_event.wait(delay):
                    break
            try:
                return self._http_get(loc)
            except Exception as exc:  # CommunicationFailure or a socket error: try again
                last = exc
                logger.warning("%s: attempt %d/%d to read %s failed: %s", source.label, attempt, source.nretry,
                               loc, exc)
        raise _Unavailable(f"cannot read {loc}: {last}")

    def _http_get(self, url: str) -> bytes:
        http = self.http
        if http is None:
            from pilot.util.https import shared_client
            http = self.http = shared_client()
        elif isinstance(http, type):
            http = self.http = http()
        try:
            return http.get(url, timeout=self.timeout, retries=1)
        except TypeError:  # a client without a retries keyword
            return http.get(url, timeout=self.timeout)

    def _cache_matches(self, source: Source) -> bool:
        """A cache file written from another URL is not used (its ``.source`` side file says where from)."""
        side = source.location + ".source"
        if not os.path.exists(side):
            return True
        try:
            with open(side) as handle:
                origin = handle.read().strip()
        except OSError:
            return True
        wanted = self.queuedata_url if "queuedata" in os.path.basename(source.location) else self.storagedata_url
        return not wanted or not origin or origin == wanted or origin.startswith(wanted.split("{")[0])

    def _write_cache(self, source: Source, data: Any) -> None:
        path = source.cache_file
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "w") as handle:
                handle.write(json.dumps(data))  # the C encoder (json.dump encodes in Python)
            os.replace(tmp, path)
            with open(path + ".source", "w") as handle:
                handle.write(source.location)
        except OSError as exc:
            logger.warning("cannot write cache file %s: %s", path, exc)


class _Unavailable(Exception):
    """A source that gave no usable data."""


def _fill(url: str, pandaqueue: str) -> str:
    return url.replace("{pandaqueue}", pandaqueue).replace("%s", pandaqueue)


def _cvmfs(path: str) -> str:
    return path.replace("CVMFS_PATH", os.environ.get("CVMFS_BASE", "/cvmfs"))


def _fresh(path: str, max_age: float) -> bool:
    try:
        return time.time() - os.path.getmtime(path) < max_age
    except OSError:
        return False


def extract_queue(data: Any, pandaqueue: str, strict: bool = False) -> Optional[dict]:
    """The record of ``pandaqueue`` from a schedconfig answer (one record, a dict keyed by name, or a list).

    A single record naming another queue is rejected when ``strict`` (cache files), accepted with a
    warning otherwise.
    """
    if isinstance(data, list):
        for rec in data:
            if isinstance(rec, dict) and pandaqueue in (rec.get("nickname"), rec.get("name")):
                return rec
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get(pandaqueue), dict):
        return data[pandaqueue]
    name = data.get("nickname") or data.get("name")
    looks_like_record = any(k in data for k in ("nickname", "state", "copytools", "acopytools", "maxwdir"))
    if not looks_like_record:
        return None
    if name and name != pandaqueue:
        if strict:
            return None
        logger.warning("queuedata names queue %s, requested %s", name, pandaqueue)
    return data
