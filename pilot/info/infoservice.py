"""The information service: one object that knows the queue's settings and its storages.

Usage by the pilot::

    infosys.init(args.queue, queuedata_url=args.queuedata_url, storagedata_url=args.storagedata_url)
    infosys.check_queue()          # PilotException 1359 unless the queue is ACTIVE

Usage by Harvester (unchanged from Pilot 2)::

    infosys.init(queue, infosys.confinfo, infosys.extinfo)
    infosys.queuedata.direct_access_lan = False

Priority of settings (highest first): the pilot config (``confinfo``), the job (``jobinfo``:
``--overwriteQueueData``), then the external record (``extinfo``: files and URLs).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException, QueuedataFailure, QueuedataNotOK
from pilot.info.basedata import CoercionError
from pilot.info.configinfo import PilotConfigProvider
from pilot.info.extinfo import DEFAULT_CACHE_TIME, ExtInfoProvider
from pilot.info.queuedata import QueueData
from pilot.info.storagedata import StorageData

logger = logging.getLogger(__name__)

#: keyword arguments of :meth:`InfoService.init` that configure the external sources
_SOURCE_SETTINGS = ("queuedata_url", "storagedata_url", "queuedata_path", "storagedata_path", "http",
                    "cache_dir", "cache_time", "nretry", "retry_wait", "timeout", "use_config")


class InfoService:
    """Queue and storage information for one PanDA queue."""

    cache_time = DEFAULT_CACHE_TIME

    def __init__(self) -> None:
        self.pandaqueue: Optional[str] = None
        self.queuedata: Optional[QueueData] = None
        self.queues_info: dict = {}
        self.storages_info: dict = {}
        self.confinfo: Any = None
        self.jobinfo: Any = None
        self.extinfo: Any = ExtInfoProvider(cache_time=self.cache_time)
        self.storage_id2ddmendpoint: dict = {}
        self.ddmendpoint2storage_id: dict = {}
        self._storages_loaded = False
        self._lock = threading.RLock()

    def init(self, pandaqueue: str, confinfo: Any = None, extinfo: Any = None, jobinfo: Any = None,
             **settings: Any) -> "InfoService":
        """Load the queue's data (and prefetch the storage data).

        ``settings`` (all optional): queuedata_url, storagedata_url, queuedata_path, storagedata_path,
        http (an HttpClient instance or class), cache_dir, cache_time, nretry, retry_wait, timeout, use_config,
        check_state (bool: also run :meth:`check_queue`).

        Raises PilotException: 1116 QUEUEDATA (no source gave JSON for the queue), 1117 QUEUEDATANOTOK
        (the record lacks required fields), 1341 BADQUEUECONFIGURATION (a structural field such as
        ``copytools`` has the wrong shape, or an override does not apply), 1359 only with check_state.
        """
        check_state = bool(settings.pop("check_state", False))
        unknown = set(settings) - set(_SOURCE_SETTINGS)
        if unknown:
            raise TypeError(f"InfoService.init() got unknown keyword(s): {', '.join(sorted(unknown))}")
        if not pandaqueue:
            raise QueuedataFailure("failed to initialize the information service: no PanDA queue name")
        with self._lock:
            self.confinfo = confinfo or PilotConfigProvider()
            self.jobinfo = jobinfo
            self.extinfo = extinfo or self.extinfo or ExtInfoProvider(cache_time=self.cache_time)
            if settings and hasattr(self.extinfo, "configure"):
                self.extinfo.configure(**settings)
            self.pandaqueue = pandaqueue
            self.queues_info = {}
            self.storages_info = {}
            self._storages_loaded = False
            self.queuedata = self.resolve_queuedata(pandaqueue)
            try:
                self.resolve_storage_data()
            except PilotException as exc:  # storages are needed only by some copytools
                logger.warning("storage data not available: %s", exc)
        if check_state:
            self.check_queue()
        return self

    # ------------------------------------------------------------------ queue
    def resolve_queuedata(self, pandaqueue: str) -> QueueData:
        """The QueueData of ``pandaqueue`` (cached per service)."""
        if pandaqueue in self.queues_info:
            return self.queues_info[pandaqueue]
        record = (self._provider_data("resolve_queuedata", self.extinfo, pandaqueue) or {}).get(pandaqueue)
        if not record:
            raise QueuedataFailure(f"no queuedata for queue {pandaqueue}")
        try:
            queuedata = QueueData.from_dict(record)
        except CoercionError as exc:
            raise PilotException(f"bad queue configuration of {pandaqueue}: {exc}",
                                 code=ErrorCodes.BADQUEUECONFIGURATION) from None
        if not queuedata.name:
            queuedata.name = record.get("nickname") or ""
        missing = queuedata.missing_fields()
        if missing:
            raise QueuedataNotOK(f"queuedata of {pandaqueue} lacks required field(s): {', '.join(missing)}")
        for provider in (self.jobinfo, self.confinfo):  # lowest priority first
            overrides = self._provider_data("resolve_queuedata", provider, pandaqueue, optional=True)
            try:
                queuedata.apply_overrides((overrides or {}).get(pandaqueue))
            except CoercionError as exc:
                raise PilotException(f"cannot apply queuedata overrides from {provider!r}: {exc}",
                                     code=ErrorCodes.BADQUEUECONFIGURATION) from None
        self.queues_info[pandaqueue] = queuedata
        return queuedata

    def check_queue(self) -> None:
        """Raise PilotException 1359 PANDAQUEUENOTACTIVE unless the queue's state is ACTIVE."""
        if self.queuedata is None:
            raise QueuedataFailure("information service not initialised")
        if not self.queuedata.is_active():
            raise PilotException(f"queue {self.queuedata.name} is not ACTIVE (state={self.queuedata.state!r})",
                                 code=ErrorCodes.PANDAQUEUENOTACTIVE)

    # ------------------------------------------------------------------ storages
    def resolve_storage_data(self, ddmendpoints: Any = None) -> dict:
        """All known storages as name -> StorageData; raise 1133 NOSTORAGE if a requested one is unknown."""
        if isinstance(ddmendpoints, str):
            ddmendpoints = [ddmendpoints]
        with self._lock:
            if not self._storages_loaded:
                self._load_storages()
        missing = sorted(set(ddmendpoints or []) - set(self.storages_info))
        if missing:
            raise PilotException(f"no storage data for ddmendpoint(s) {', '.join(missing)}",
                                 code=ErrorCodes.NOSTORAGE)
        return self.storages_info

    def get_storage(self, ddmendpoint: str) -> StorageData:
        """The StorageData of one endpoint (1133 NOSTORAGE when unknown)."""
        return self.resolve_storage_data([ddmendpoint])[ddmendpoint]

    def _load_storages(self) -> None:
        raw = self._provider_data("resolve_storage_data", self.extinfo, None, optional=True) or {}
        storages = {}
        for name, record in raw.items():
            try:
                storages[name] = StorageData.from_dict(record, name=name)
            except CoercionError as exc:
                logger.warning("ignoring storage %s: %s", name, exc)
        for provider in (self.jobinfo, self.confinfo):
            overrides = self._provider_data("resolve_storage_data", provider, None, optional=True) or {}
            for name, values in overrides.items():
                if name in storages and isinstance(values, dict):
                    try:
                        storages[name].apply_overrides(values)
                    except CoercionError as exc:
                        raise PilotException(f"cannot apply storage overrides for {name}: {exc}",
                                             code=ErrorCodes.BADQUEUECONFIGURATION) from None
        self.storages_info = storages
        self._storages_loaded = True
        for name, storage in storages.items():
            if storage.pk:
                self.ddmendpoint2storage_id[name] = storage.pk
                self.storage_id2ddmendpoint[storage.pk] = name

    def get_storage_id(self, ddmendpoint: str) -> int:
        """The numeric id of a storage (1311 NOTDEFINED when unknown)."""
        self.resolve_storage_data()
        if ddmendpoint not in self.ddmendpoint2storage_id:
            raise PilotException(f"no storage id for ddmendpoint {ddmendpoint}", code=ErrorCodes.NOTDEFINED)
        return self.ddmendpoint2storage_id[ddmendpoint]

    def get_ddmendpoint(self, storage_id: Any) -> str:
        """The ddmendpoint name of a storage id (1311 NOTDEFINED when unknown)."""
        self.resolve_storage_data()
        try:
            return self.storage_id2ddmendpoint[int(storage_id)]
        except (KeyError, TypeError, ValueError):
            raise PilotException(f"no ddmendpoint for storage id {storage_id}", code=ErrorCodes.NOTDEFINED) from None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _provider_data(method: str, provider: Any, arg: Any, optional: bool = False) -> Optional[dict]:
        """Call ``provider.<method>(arg)``; provider errors are fatal unless ``optional``."""
        func = getattr(provider, method, None)
        if not callable(func):
            return None
        try:
            return func(arg) if arg is not None else func()
        except PilotException:
            if optional:
                logger.warning("%s of %r failed", method, provider, exc_info=True)
                return None
            raise

    def __repr__(self) -> str:
        return f"InfoService(pandaqueue={self.pandaqueue!r})"
