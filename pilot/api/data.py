"""The Data API: stage files in and out with the copytools configured for an activity.

Current call shape (pilot, Harvester)::

    client = StageInClient(infosys, acopytools={'default': ['rucio']}, logger=log)
    client.transfer(files, activity='pr', workdir=job_dir)     # FileSpec list, returned annotated

Legacy shape (Harvester's pilotmover preparator)::

    StageInClient(site='SITE').transfer([{'scope': s, 'name': n, 'destination': d}])   # dicts annotated

Done here, once for every copytool: copytool choice per activity, input replicas (storage protocols,
``--input-dir``, Rucio), the input space check, direct access, output destinations and SURLs, size and
checksum verification, retries with jittered back-off by error class, the next replica / alternative
storage after a failure, concurrent transfers through a bounded pool, and one trace report per file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import TYPE_CHECKING, Any, Optional

from pilot.api import staging
from pilot.api.directaccess import direct_access_min_size
from pilot.api.bulk import bulk_stage_in, split_for_bulk, wants_bulk
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException, StageInFailure, StageOutFailure
from pilot.common.pluginfactory import PluginFactory
from pilot.copytool.common import (CHECKSUM, CONFIG, MISSING, NETWORK, RETRYABLE, SERVICE, TIMEOUT, classify_error,
                                   local_file_path, transfers_in_threads)
from pilot.copytool.middleware import transfers_in
from pilot.copytool.options import OPTIONS_KEY, CopytoolOptions
from pilot.info.filespec import FileSpec
from pilot.util.tracereport import TraceBatch, TraceReport

if TYPE_CHECKING:  # pragma: no cover
    from pilot.api.asynctransfer import TransferHandle
    from pilot.info.jobdata import JobData

module_logger = logging.getLogger(__name__)

#: keyword arguments of transfer() and their defaults (every one is optional)
TRANSFER_DEFAULTS: dict = {
    "use_vp": False, "input_dir": "", "output_dir": "", "workdir": "", "cwd": "", "usecontainer": False,
    "use_pcache": False, "use_bulk": None, "catchall": "", "job": None, "raise_exception": True,
}


class StagingClient:
    """What stage-in and stage-out share: copytool selection, the transfer loop, retries, traces."""

    mode = ""  # 'stage-in' or 'stage-out'
    failure = PilotException
    direct_remoteinput_allowed_schemas = ["root", "https"]
    direct_localinput_allowed_schemas = ["root", "dcache", "dcap", "file", "https", "davs"]
    remoteinput_allowed_schemas = ["root", "gsiftp", "dcap", "davs", "srm", "https", "storm"]

    def __init__(self, infosys_instance: Any = None, acopytools: Any = None, logger: Any = None,
                 default_copytools: Any = "rucio", trace_report: Optional[TraceReport] = None, **kwargs: Any) -> None:
        self.logger = logger or module_logger
        site = kwargs.pop("site", None)
        self.legacy_site = (os.environ.get("VO_ATLAS_AGIS_SITE") or site) if site is not None else None
        if infosys_instance is None:
            from pilot.info import infosys as infosys_instance
        self.infosys = infosys_instance
        self.acopytools = self._resolve_acopytools(acopytools, default_copytools)
        self.trace_report = trace_report or TraceReport(pq=os.environ.get("PILOT_SITENAME", ""))
        self.trace_url: Optional[str] = kwargs.pop("trace_url", None)
        self.http = kwargs.pop("http", None)
        # a caller that spans several transfer calls (the pilot's stage-out of outputs, then the log)
        # passes its own batch and flushes it; otherwise each transfer() sends its traces at its end
        self.trace_batch: Optional[TraceBatch] = kwargs.pop("trace_batch", None)
        self.workdir: str = kwargs.pop("workdir", "") or ""
        self.max_workers: int = max(1, int(kwargs.pop("max_workers", 8)))
        self.retry = kwargs.pop("retry_policy", None) or staging.RetryPolicy()
        self.stop_event: threading.Event = kwargs.pop("stop_event", None) or threading.Event()
        self.plugins = PluginFactory(kwargs.pop("copytool_aliases", None))
        self.rucio = kwargs.pop("rucio_client", None)  # injected Rucio client (tests); None: created on demand
        self.options = kwargs  # anything else (P3 ipv=..., ...) is accepted and ignored
        self.logger.info("configured copytools per activity: %s", self.acopytools)

    # ------------------------------------------------------------------ configuration
    @property
    def queuedata(self) -> Any:
        """The queue's data, or None when the information service is not initialised."""
        return getattr(self.infosys, "queuedata", None)

    def _resolve_acopytools(self, acopytools: Any, default_copytools: Any) -> dict:
        if isinstance(acopytools, str):
            acopytools = {"default": [acopytools]} if acopytools else {}
        elif isinstance(acopytools, (list, tuple)):
            acopytools = {"default": list(acopytools)} if acopytools else {}
        result = {k: ([v] if isinstance(v, str) else list(v or [])) for k, v in (acopytools or {}).items()}
        queuedata = self.queuedata
        if not result and queuedata is not None:
            result = {k: list(v) for k, v in (queuedata.acopytools or {}).items()}
            if not result and queuedata.copytools:
                result = {"default": list(queuedata.copytools)}
        if not result.get("default"):
            if isinstance(default_copytools, str):
                default_copytools = [default_copytools] if default_copytools else []
            result["default"] = list(default_copytools or [])
        if not any(result.values()):
            raise PilotException("failed to resolve the copytools (acopytools empty)",
                                 code=ErrorCodes.UNKNOWNCOPYTOOL)
        return result

    def get_copytools(self, activities: list) -> list:
        """Tool names of the first activity that has any."""
        for activity in activities:
            tools = self.acopytools.get(activity)
            if tools:
                return list(tools)
        return []

    def _ddmconf(self) -> dict:
        try:
            return self.infosys.resolve_storage_data() if self.queuedata is not None else {}
        except PilotException as exc:
            self.logger.warning("no storage data: %s", exc)
            return {}

    def allowed_schemas(self, module: ModuleType, name: str, activities: list) -> Optional[list]:
        """Scheme priority for a tool: the queue's acopytools_schemas (per activity or tool) override the tool's."""
        schemas = (self.queuedata.acopytools_schemas or {}) if self.queuedata is not None else {}
        for key in list(activities) + [name]:
            if schemas.get(key):
                return list(schemas[key])
        return getattr(module, "allowed_schemas", None)

    # ------------------------------------------------------------------ transfer
    def transfer(self, files: list, activity: Any = "default", **kwargs: Any) -> list:
        """Transfer ``files`` with the tools of ``activity`` (a name or a prioritised list).

        Returns the files (FileSpec objects, or the legacy dicts annotated with errno/status/errmsg).
        Raises StageInFailure/StageOutFailure-family PilotException with the first failed file's code when
        a file is left untransferred, unless ``raise_exception=False``.
        """
        if files and all(isinstance(f, dict) for f in files):
            from pilot.api.legacy import transfer_dicts
            return transfer_dicts(self, files, activity, **kwargs)
        options = {**TRANSFER_DEFAULTS, **kwargs}
        raise_exception = options.pop("raise_exception")
        stop = options.pop("_stop_event", None) or self.stop_event
        activities = [activity] if isinstance(activity, str) else list(activity or [])
        if "default" not in activities:
            activities.append("default")
        if options["job"] is not None:
            self.trace_report.init(options["job"])
        if not options["catchall"] and self.queuedata is not None:
            options["catchall"] = self.queuedata.catchall
        options["workdir"] = options["workdir"] or self.workdir
        files = list(files)
        batch = self.trace_batch if self.trace_batch is not None else TraceBatch(self.trace_url, self.http)
        options["trace_batch"] = batch
        try:
            return self._transfer_with_tools(files, activities, options, stop, raise_exception)
        finally:
            if self.trace_batch is None:
                batch.flush()

    def _transfer_with_tools(self, files: list, activities: list, options: dict, stop: threading.Event,
                             raise_exception: bool) -> list:
        """The tools of ``activities`` in turn, each on the files the previous ones left."""
        tools = self.get_copytools(activities)
        errors: list = []
        remaining = [f for f in files if not f.is_transferred]
        if not tools:
            errors.append(PilotException(f"no copytool for activities {activities}", code=ErrorCodes.UNKNOWNCOPYTOOL))
        for name in tools:
            if not remaining or stop.is_set():
                break
            try:
                module = self.plugins.load_copytool(name)
            except PilotException as exc:
                self.logger.warning("copytool %s: %s", name, exc.diag)
                errors.append(exc)
                continue
            valid = getattr(module, "is_valid_for_copy_in" if self.mode == "stage-in" else "is_valid_for_copy_out")
            if not valid(remaining):
                self.logger.warning("copytool %s is not valid for these files, skipped", name)
                continue
            self.logger.info("transferring %d file(s) with copytool %s (activity %s)", len(remaining), name,
                             activities)
            try:
                self.transfer_files(module, name, remaining, activities, dict(options, stop_event=stop))
            except PilotException as exc:
                errors.append(exc)
            remaining = [f for f in remaining if not f.is_transferred]
        if remaining:
            if stop.is_set():
                for fspec in remaining:
                    if fspec.status is None:
                        fspec.transfer_error = "cancelled"
            self._fail(remaining, errors, raise_exception)
        return files

    def transfer_async(self, files: list, activity: Any = "default", **kwargs: Any) -> "TransferHandle":
        """Start ``transfer(files, activity, **kwargs)`` in the background; returns a TransferHandle."""
        from pilot.api.asynctransfer import TransferHandle
        return TransferHandle(self, files, activity, kwargs)

    def _fail(self, remaining: list, errors: list, raise_exception: bool) -> None:
        code = next((f.status_code for f in remaining if f.status_code), 0)
        if not code:
            code = errors[-1].get_error_code() if errors else self.failure.default_code
        for fspec in remaining:
            if not fspec.status_code:
                fspec.status, fspec.status_code = "failed", code
        diag = "; ".join(f"{f.lfn}: {f.transfer_error or ErrorCodes.get_error_message(f.status_code)}"
                         for f in remaining[:5])
        if errors and not any(f.transfer_error for f in remaining):
            diag = errors[-1].diag
        self.logger.warning("%s failed for %d file(s): %s", self.mode, len(remaining), diag)
        if raise_exception:
            raise self.failure(f"{self.mode} failed: {diag}"[:2048], code=code)

    def transfer_files(self, module: ModuleType, name: str, files: list, activities: list, options: dict) -> list:
        """Prepare ``files`` for ``module`` and transfer them concurrently (bounded pool).

        The files go one after the other in the calling thread when there is one, or when the tool says
        its transfers are metadata operations (``parallel_transfers``, e.g. ``mv`` linking inputs).
        """
        for fspec in files:
            fspec.status, fspec.status_code, fspec.transfer_error = None, 0, ""
            try:
                local_file_path(fspec, options.get("workdir") or "")  # refuses LFNs leaving the work dir
            except PilotException as exc:
                self._record_failure(fspec, exc, 1, CONFIG)
        files = [f for f in files if f.status is None]
        tool_kwargs = self.tool_kwargs(name, activities, options)
        self.prepare_files(module, name, files, activities, options, tool_kwargs)
        todo = [f for f in files if f.status is None]
        corrupt: dict = {}
        if self.mode == "stage-in":
            small, large = split_for_bulk(todo, options.get("use_bulk"))
            if wants_bulk(module, small, options.get("use_bulk")):
                left, corrupt = bulk_stage_in(self, module, name, small, tool_kwargs)
                todo = left + large
        workers = min(self.max_workers, len(todo)) or 1
        if workers > 1 and not transfers_in_threads(module, tool_kwargs, self.mode == "stage-in"):
            self.logger.debug("%s transfers of %d file(s) are metadata operations: no pool", name, len(todo))
            workers = 1
        if workers == 1:
            for fspec in todo:
                self.transfer_one(module, name, fspec, tool_kwargs, corrupt.get(id(fspec)))
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{self.mode}-{name}") as pool:
                for future in [pool.submit(self.transfer_one, module, name, f, tool_kwargs, corrupt.get(id(f)))
                               for f in todo]:
                    future.result()
        return files

    def tool_kwargs(self, name: str, activities: list, options: dict) -> dict:
        """Keyword arguments every copytool call receives: the Pilot 2 keywords, and the same once more as
        one typed, frozen :class:`~pilot.copytool.options.CopytoolOptions` (built here, once per tool and
        transfer) that the pilot's copytools read."""
        kwargs = dict(options)
        kwargs.update(copytools=(self.queuedata.copytools if self.queuedata is not None else {}) or {},
                      ddmconf=self._ddmconf(), activity=activities, trace_report=self.trace_report,
                      max_workers=self.max_workers)
        kwargs[OPTIONS_KEY] = CopytoolOptions.from_kwargs(kwargs)
        return kwargs

    def transfer_one(self, module: ModuleType, name: str, fspec: FileSpec, kwargs: dict,
                     corrupt: Optional[tuple] = None) -> None:
        """Transfer one file: each alternative (replica / storage) in turn, retries per error class.

        ``corrupt`` is ``(pfn, exception)`` of a replica that already delivered bad data (in a bulk attempt):
        it is not tried again.
        """
        stop = kwargs.get("stop_event") or self.stop_event
        if stop.is_set():
            fspec.status, fspec.status_code = "failed", self.failure.default_code
            fspec.transfer_error = "cancelled"
            return
        trace = self.new_trace(fspec, name, kwargs)
        last: Optional[PilotException] = None
        alternatives = self.alternatives(fspec, kwargs)
        if corrupt:
            alternatives = [a for a in alternatives if a.get("pfn") != corrupt[0]]
            last = corrupt[1]
            self._record_failure(fspec, last, 1, CHECKSUM)
        for alternative in alternatives or ([] if corrupt else [None]):
            if stop.is_set():
                break
            if alternative is not None:
                fspec.status, fspec.status_code = None, 0
                self.use_alternative(fspec, alternative, module, name, kwargs)
                if fspec.status == "failed":
                    continue
            for attempt in range(1, self.retry.attempts + 1):
                fspec.status, fspec.status_code = None, 0
                try:
                    trace.update(transferStart=time.time())
                    with transfers_in(self.queuedata, kwargs.get("workdir") or fspec.workdir or ""):
                        self.copy(module, fspec, kwargs)  # tool commands in the middleware container, if any
                    trace.update(validateStart=time.time())
                    self.verify(fspec, kwargs)
                    self.finish_trace(trace, fspec, "DONE", "", kwargs.get("trace_batch"))
                    return
                except PilotException as exc:
                    last = exc
                    kind = exc.kwargs.get("kind") or _kind_of(exc, self.mode == "stage-in")
                    self._record_failure(fspec, exc, attempt, kind)
                    if kind not in RETRYABLE or attempt == self.retry.attempts or stop.is_set():
                        break
                    if not self.retry.wait(attempt, stop):
                        break
            if last is not None and (last.kwargs.get("kind") == MISSING and alternative is None):
                break
        state = (last.state if last is not None else None) or "FAILED"
        self.finish_trace(trace, fspec, state, last.diag if last is not None else "", kwargs.get("trace_batch"))

    def _record_failure(self, fspec: FileSpec, exc: PilotException, attempt: int, kind: str) -> None:
        fspec.status, fspec.status_code, fspec.transfer_error = "failed", exc.get_error_code(), exc.diag
        self.logger.warning("%s of %s failed (attempt %d/%d, %s): %s", self.mode, fspec.lfn, attempt,
                            self.retry.attempts, kind, exc.diag)

    # ------------------------------------------------------------------ traces
    def new_trace(self, fspec: FileSpec, name: str, kwargs: dict) -> TraceReport:
        """A per-file copy of the client's trace report."""
        trace = self.trace_report.copy()
        job = kwargs.get("job")
        trace.set_file(fspec, bool(getattr(job, "is_analysis", False)), "get" if self.mode == "stage-in" else "put")
        trace.update(protocol=name, catStart=time.time(), relativeStart=time.time())
        if not trace.localSite:
            qd = self.queuedata
            trace.localSite = os.environ.get("RUCIO_LOCAL_SITE_ID") or (
                (qd.site or qd.resource or qd.name) if qd is not None else "") or self.legacy_site or ""
        if not trace.remoteSite:
            trace.remoteSite = fspec.ddmendpoint or trace.localSite
        return trace

    def traced(self, name: str) -> bool:
        """Whether transfers by copytool ``name`` are reported to Rucio.

        A copytool says no with ``send_traces = False`` (mv: the files are placed for, and moved on by, the
        CE, as in the aCT model; the pilot never reads or writes the storage, so there is no replica access
        to report, and Pilot 2 and 3 send none for it either).
        """
        try:
            return bool(getattr(self.plugins.load_copytool(name), "send_traces", True))
        except Exception:  # an unknown name: report, as before
            return True

    def finish_trace(self, trace: TraceReport, fspec: FileSpec, state: str, reason: str,
                     batch: Optional[TraceBatch] = None) -> None:
        """Complete a file's trace and add it to ``batch`` (sent at once without one); never raises."""
        trace.update(clientState=state, stateReason=reason[:500] if reason else None, timeEnd=time.time(),
                     url=fspec.turl or fspec.surl or None, filesize=int(fspec.filesize or 0))
        if fspec.ddmendpoint:
            trace.remoteSite = fspec.ddmendpoint
        traced = self.traced(trace.protocol)
        if fspec.replica_source == "federation":  # the trace says the file came through the federation
            trace.update(protocol=f"{trace.protocol}/federation")
        try:
            if not traced:
                pass
            elif batch is not None:
                batch.add(trace)
            else:
                trace.send(self.trace_url, self.http)
        except Exception as exc:  # pragma: no cover - add()/send() already swallow errors
            self.logger.warning("trace report failed: %s", exc)
        metrics = self.options.get("metrics")  # the pilot's metrics (pilot.util.prometheus), when given
        if metrics is not None:
            start = getattr(trace, "transferStart", None) or getattr(trace, "catStart", None) or time.time()
            metrics.observe_transfer(self.mode, getattr(trace, "protocol", ""), int(fspec.filesize or 0),
                                     time.time() - float(start), state == "DONE")

    # ------------------------------------------------------------------ per direction
    def prepare_files(self, module: ModuleType, name: str, files: list, activities: list, options: dict,
                      kwargs: dict) -> None:
        """Resolve sources/destinations; mark files that cannot be transferred as failed."""
        raise NotImplementedError

    def alternatives(self, fspec: FileSpec, kwargs: dict) -> list:
        """Sources (stage-in) or destinations (stage-out) to try in order."""
        return []

    def use_alternative(self, fspec: FileSpec, alternative: Any, module: ModuleType, name: str, kwargs: dict) -> None:
        """Point the file at one alternative."""

    def copy(self, module: ModuleType, fspec: FileSpec, kwargs: dict) -> None:
        """Run the copytool for one file."""
        raise NotImplementedError

    def verify(self, fspec: FileSpec, kwargs: dict) -> None:
        """Check a transferred file."""


class StageInClient(StagingClient):
    """Bring input files into the job's work dir (or hand their TURL to the payload for direct access)."""

    mode = "stage-in"
    failure = StageInFailure

    def prepare_files(self, module: ModuleType, name: str, files: list, activities: list, options: dict,
                      kwargs: dict) -> None:
        """Replicas (Rucio or storage protocols), direct access decision, space check."""
        workdir = options.get("workdir") or ""
        for target in dict.fromkeys(fspec.workdir or workdir for fspec in files):  # each work dir once
            if target:
                os.makedirs(target, exist_ok=True)
        schemas = self.allowed_schemas(module, name, activities)
        try:
            if getattr(module, "require_replicas", False):
                self.resolve_replicas(files, schemas, options, kwargs.get("ddmconf") or {})
            if getattr(module, "require_input_protocols", False) or getattr(module, "require_replicas", False):
                # storage protocols (deterministic paths) for files Rucio does not know
                staging.resolve_input_protocols(files, kwargs.get("ddmconf") or {}, self.queuedata, schemas,
                                                options.get("input_dir") or "")
            self.set_direct_access(files, options.get("job"))
            if getattr(module, "check_availablespace", True):
                staging.check_space(files, self.queuedata, workdir or os.getcwd())
        except PilotException as exc:
            for fspec in files:
                if fspec.status is None:
                    fspec.status, fspec.status_code, fspec.transfer_error = "failed", exc.get_error_code(), exc.diag
            raise

    def resolve_replicas(self, files: list, schemas: Optional[list], options: dict, ddmconf: dict) -> None:
        """Replicas from Rucio, except for inputs the job already places on a deterministic LAN storage.

        Those (``[Rucio] replica_lookup: auto``) are read from that storage's LAN protocols at their
        deterministic path, without a ``list_replicas`` round trip; :meth:`transfer_files` asks Rucio
        for any of them whose copy fails. VP jobs and ``replica_lookup: always`` ask Rucio for all.
        """
        from pilot.api import replicas

        use_vp = bool(options.get("use_vp"))
        direct = []
        if not use_vp and replicas.lookup_mode() == "auto":
            direct = [f for f in files if not f.replicas and f.replica_source != "rucio"
                      and replicas.needs_no_lookup(f, ddmconf, self.queuedata)]
            if direct:
                staging.resolve_input_protocols(direct, ddmconf, self.queuedata, schemas,
                                                options.get("input_dir") or "")
                for fspec in direct:
                    fspec.replicas = [r for r in fspec.replicas or [] if r.get("ddmendpoint") == fspec.ddmendpoint
                                      and r.get("domain") == "lan"]
                    fspec.replica_source = "storage" if fspec.replicas else ""
                self.logger.info("%d input(s) read from their LAN storage without a Rucio lookup",
                                 sum(1 for f in direct if f.replica_source == "storage"))
        todo = [f for f in files if f.replica_source != "storage"]
        if todo:
            replicas.resolve_replicas(todo, self, schemas, use_vp=use_vp, client=self.rucio)
            for fspec in todo:
                fspec.replica_source = "rucio"

    def _transfer_with_tools(self, files: list, activities: list, options: dict, stop: threading.Event,
                             raise_exception: bool) -> list:
        """The tools in turn, then the federation for inputs none of them could deliver (:mod:`.federation`)."""
        from pilot.api import federation

        redirector = federation.federation_redirector(self.queuedata)
        if not redirector:
            return super()._transfer_with_tools(files, activities, options, stop, raise_exception)
        super()._transfer_with_tools(files, activities, options, stop, False)
        failed = [f for f in files if federation.may_retry(f)]
        if failed and not stop.is_set():
            federation.fallback(self, failed, redirector, activities, dict(options, stop_event=stop))
        remaining = [f for f in files if not f.is_transferred]
        if remaining:
            self._fail(remaining, [], raise_exception)
        return files

    def transfer_files(self, module: ModuleType, name: str, files: list, activities: list, options: dict) -> list:
        """Transfer ``files``; inputs read from their storage without a lookup get a Rucio lookup if that failed."""
        files = super().transfer_files(module, name, files, activities, options)
        stop = options.get("stop_event") or self.stop_event
        again = [f for f in files if f.status == "failed" and f.replica_source == "storage"]
        if again and not stop.is_set():
            self.logger.info("%d input(s) failed from their LAN storage: asking Rucio for their replicas",
                             len(again))
            for fspec in again:
                fspec.replicas, fspec.replica_source, fspec.turl = None, "rucio", ""
            super().transfer_files(module, name, again, activities, options)
        return files

    def set_direct_access(self, files: list, job: Optional[JobData]) -> None:
        """Mark inputs read remotely by the payload (status ``remote_io``) when queue and job allow it."""
        queuedata = self.queuedata
        if queuedata is None or not (queuedata.direct_access_lan or queuedata.direct_access_wan):
            return
        if job is None:  # Harvester and other callers without a job always copy
            return
        job_allows = getattr(job, "transfertype", "") == "direct" or \
            getattr(job, "accessmode", "") == "direct" or bool(getattr(job, "is_analysis", False))
        if not job_allows:
            return
        min_size = direct_access_min_size(queuedata)
        for fspec in files:
            if fspec.accessmode == "copy" or not fspec.is_directaccess(ensure_replica=False):
                continue
            if min_size and int(fspec.filesize or 0) < min_size:
                self.logger.info("input %s (%d bytes, below the direct access size %d): copied", fspec.lfn,
                                 int(fspec.filesize or 0), min_size)
                continue
            for replica in fspec.replicas or []:
                lan = replica.get("domain", "lan") == "lan"
                allowed = self.direct_localinput_allowed_schemas if lan else self.direct_remoteinput_allowed_schemas
                if (lan and queuedata.direct_access_lan or not lan and queuedata.direct_access_wan) and \
                        staging.scheme_allowed(replica["pfn"], allowed) and "://" in replica["pfn"]:
                    fspec.turl, fspec.ddmendpoint, fspec.domain = replica["pfn"], replica["ddmendpoint"], \
                        replica.get("domain", "lan")
                    fspec.status, fspec.status_code, fspec.accessmode = "remote_io", 0, "direct"
                    self.logger.info("input %s (%d bytes): direct access, the payload reads %s", fspec.lfn,
                                     int(fspec.filesize or 0), fspec.turl)
                    break
            else:
                if min_size:
                    self.logger.info("input %s (%d bytes): copied (no replica the payload can read remotely)",
                                     fspec.lfn, int(fspec.filesize or 0))

    def alternatives(self, fspec: FileSpec, kwargs: dict) -> list:
        return list(fspec.replicas or [])

    def use_alternative(self, fspec: FileSpec, alternative: Any, module: ModuleType, name: str, kwargs: dict) -> None:
        fspec.turl = alternative.get("pfn", "")
        fspec.domain = alternative.get("domain", "")
        if alternative.get("ddmendpoint"):
            fspec.ddmendpoint = alternative["ddmendpoint"]

    def copy(self, module: ModuleType, fspec: FileSpec, kwargs: dict) -> None:
        module.copy_in([fspec], **kwargs)

    def verify(self, fspec: FileSpec, kwargs: dict) -> None:
        if fspec.status == "transferred":
            staging.verify_input(fspec, kwargs.get("workdir") or "")


class StageOutClient(StagingClient):
    """Upload output and log files to their storage (the primary, else ``ddmendpoint_alt``)."""

    mode = "stage-out"
    failure = StageOutFailure

    def prepare_files(self, module: ModuleType, name: str, files: list, activities: list, options: dict,
                      kwargs: dict) -> None:
        """Local size/adler32 (before upload); a file without ddmendpoint gets the activity's first storage."""
        # in the pilot's job flow (a job is given) the work dir is the payload's: links must stay inside it
        root = (options.get("workdir") or None) if options.get("job") is not None else None
        for fspec in files:
            try:
                staging.prepare_output(fspec, options.get("workdir") or "",
                                       root=(fspec.workdir or root) if root else None)
            except PilotException as exc:
                fspec.status, fspec.status_code, fspec.transfer_error = "failed", exc.get_error_code(), exc.diag
                continue
            if not fspec.ddmendpoint:
                fspec.ddmendpoint = (staging.output_storages(fspec, self.queuedata, activities) or [""])[0]
                if fspec.ddmendpoint == fspec.ddmendpoint_alt:
                    fspec.ddmendpoint = ""

    def prepare_destinations(self, files: list, activities: Any, alt_exclude: Optional[list] = None) -> list:
        """Primary and alternative storage of each output by Pilot 2's rules (the job flow calls this when
        alternative stage-out is allowed).

        The activity's storages are the queue's ``astorages`` of the first activity that has any. The
        default is the first of them; a file's alternative is the next one in that list (cycled), never its
        primary nor one in ``alt_exclude`` (the task's nucleus). A file without a storage gets the default;
        a file whose storage is not one of the queue's gets the default as primary and its own as the
        alternative. Without astorages: nothing to do on an ``mv`` queue, else 1133 NOSTORAGE.
        """
        queuedata = self.queuedata
        if queuedata is None:
            return files
        activities = [activities] if isinstance(activities, str) else list(activities or [])
        if not activities:
            raise PilotException("cannot resolve destinations: no activity", code=ErrorCodes.INTERNALPILOTPROBLEM,
                                 state="INTERNAL_ERROR")
        storages: list = []
        for activity in activities:
            storages = list((queuedata.astorages or {}).get(activity) or [])
            if storages:
                break
        if not storages:
            if "mv" in (queuedata.copytools or {}):
                return files
            raise PilotException(f"no storage for activities {activities}", code=ErrorCodes.NOSTORAGE,
                                 state="NO_ASTORAGES_DEFINED")
        exclude = set(alt_exclude or [])

        def next_of(primary: str) -> Optional[str]:
            start = storages.index(primary) if primary in storages else 0
            for step in range(1, len(storages) + 1):
                candidate = storages[(start + step) % len(storages)]
                if candidate != primary and candidate not in exclude:
                    return candidate
            return None

        for fspec in files:
            if not fspec.ddmendpoint:
                fspec.ddmendpoint, fspec.ddmendpoint_alt = storages[0], next_of(storages[0])
            elif fspec.ddmendpoint not in storages:
                fspec.ddmendpoint_alt = fspec.ddmendpoint if fspec.ddmendpoint not in exclude else None
                fspec.ddmendpoint = storages[0]
            else:
                fspec.ddmendpoint_alt = next_of(fspec.ddmendpoint)
            self.logger.info("%s: stage-out to %s, alternative %s", fspec.lfn, fspec.ddmendpoint,
                             fspec.ddmendpoint_alt)
        return files

    def alternatives(self, fspec: FileSpec, kwargs: dict) -> list:
        """The file's storage, then ``ddmendpoint_alt``."""
        return staging.output_storages(fspec, self.queuedata, kwargs.get("activity") or [])

    def use_alternative(self, fspec: FileSpec, alternative: Any, module: ModuleType, name: str, kwargs: dict) -> None:
        """Resolve the SURL on storage ``alternative`` (not needed with ``output_dir`` or without protocols).

        After a transfer to the alternative storage ``is_altstaged`` is True (``ddmendpoint`` keeps the primary).
        """
        fspec.is_altstaged = bool(fspec.ddmendpoint_alt and alternative == fspec.ddmendpoint_alt
                                  and alternative != fspec.ddmendpoint)
        if kwargs.get("output_dir"):
            return
        ddmconf = kwargs.get("ddmconf") or {}
        storage = ddmconf.get(alternative)
        if storage is None and (ddmconf or not alternative):
            # the storage data name every endpoint: one it does not know is no place for an output
            # (without any storage data, aCT/ARC mode, the file goes to output.list instead)
            fspec.status, fspec.status_code = "failed", ErrorCodes.NOSTORAGE
            fspec.transfer_error = f"unknown storage endpoint {alternative!r} for {fspec.lfn}"
            return
        if not getattr(module, "require_protocols", True):
            return
        if storage is None and getattr(module, "protocols_optional", False):
            return  # e.g. mv in aCT mode: the SURL is only written to output.list
        fspec.surl = fspec.turl = ""
        try:
            if storage is None:
                raise PilotException(f"no storage data for {alternative}", code=ErrorCodes.NOSTORAGE,
                                     state="NO_PROTOCOL")
            resolved = staging.resolve_surl(fspec, storage, self.allowed_schemas(module, name, kwargs["activity"]))
        except PilotException as exc:
            fspec.status, fspec.status_code, fspec.transfer_error = "failed", exc.get_error_code(), exc.diag
            return
        fspec.surl, fspec.turl, fspec.protocol_id = resolved["surl"], resolved["surl"], resolved["protocol_id"]

    def copy(self, module: ModuleType, fspec: FileSpec, kwargs: dict) -> None:
        fspec.remote_checksum = {}
        module.copy_out([fspec], **kwargs)

    def verify(self, fspec: FileSpec, kwargs: dict) -> None:
        if fspec.status == "transferred":
            staging.verify_output(fspec)


def _kind_of(exc: PilotException, is_stagein: bool) -> str:
    """Error class of an exception raised without one: retry only what looks transient."""
    kind = classify_error(exc.diag, is_stagein).kind
    return kind if kind in (TIMEOUT, SERVICE, NETWORK) else CONFIG
