"""The ``rucio`` copytool: the rucio-clients API (DownloadClient / UploadClient).

Stage-in downloads the replica the Data API chose (``download_pfns`` with its PFN and storage), or
lets Rucio pick one (``download_dids``) when no replica is known. Stage-out uploads to the file's
storage (``ddmendpoint``, or ``ddmendpoint_alt`` after a failure) without registering the file
(``no_register=True`` unless the caller says otherwise: PanDA registers outputs), writes Rucio's
summary to ``<workdir>/rucio_upload.json`` and takes the PFN and adler32 from it. Rucio's own traces
are off: the Data API sends one trace per file. ``copy_in_bulk`` downloads many files with one
``download_pfns`` call (Rucio's own threads, at most 5); root:// replicas on a storage whose Rucio
protocol is rucio-clients' XRootD implementation (which runs ``xrdfs query config`` and ``xrdcp -f`` for
every file) are first fetched with one ``xrdcp --infiles`` for all of them, with the same security
setting (``XrdSecPROTOCOL=gsi``; not with token authentication), and what that leaves goes to
``download_pfns``. A failed download is classified from the state
and reason Rucio records in its trace (FILE_NOT_FOUND / a missing source -> 1331, FAIL_VALIDATE -> 1171).
The Rucio configuration must be a client one (see :func:`config_problem`).
"""

from __future__ import annotations

import json
import logging
import os
import types
from typing import TYPE_CHECKING, Any

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool.common import get_timeout, local_file_path, mark_failed, settle_existing, transfer_error
from pilot.copytool.options import CopytoolOptions
from pilot.util.filehandling import remove_file

if TYPE_CHECKING:
    from pilot.info.filespec import FileSpec

logger = logging.getLogger(__name__)

require_replicas = True
require_input_protocols = False
require_protocols = False
allowed_schemas = ["root", "davs", "https", "file", "srm", "gsiftp", "storm"]
check_availablespace = True

SUMMARY_FILE = "rucio_upload.json"
SUMMARY_MAX = 4 * 1024 * 1024  # bytes of an upload summary the pilot reads at most
#: rucio-clients' XRootD protocol: a plain ``xrdcp -f PFN DEST`` per file (after an ``xrdfs query config``)
XROOTD_IMPL = "rucio.rse.protocols.xrootd.Default"
DOWNLOADED = ("DONE", "ALREADY_DONE", "FOUND_IN_PCACHE")


def is_valid_for_copy_in(files: list) -> bool:
    """Every file needs a scope and an LFN."""
    return all(f.lfn and f.scope for f in files)


def is_valid_for_copy_out(files: list) -> bool:
    """Every file needs a scope and an LFN."""
    return all(f.lfn and f.scope for f in files)


def config_path() -> str:
    """The configuration file rucio-clients reads (its own search order), or '' when there is none."""
    candidates = [os.environ.get("RUCIO_CONFIG", "")]
    candidates += [os.path.join(os.environ[var], "etc", "rucio.cfg")
                   for var in ("RUCIO_HOME", "VIRTUAL_ENV", "CONDA_PREFIX") if os.environ.get(var)]
    candidates.append("/opt/rucio/etc/rucio.cfg")
    return next((path for path in candidates if path and os.path.isfile(path)), "")


def config_problem() -> str:
    """Why the Rucio configuration cannot serve a client ('' when it looks fine).

    rucio-clients runs as a server when its file has a ``[database]`` section (it then imports
    ``rucio.core``, which the client package does not have). A file with ``[client]`` as well is used in
    client mode (``RUCIO_CLIENT_MODE=1`` is set for this process); one without ``[client]`` cannot work.
    """
    import configparser

    path = config_path()
    if not path:
        return "no Rucio configuration found (set RUCIO_CONFIG to a file with a [client] section)"
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path)
    except configparser.Error as exc:
        return f"{path} is not a valid Rucio configuration: {exc}"
    if not parser.has_section("client"):
        extra = " (it has a [database] section: a Rucio server configuration)" if parser.has_section("database") \
            else ""
        return f"{path} has no [client] section{extra}; give the pilot a client configuration through RUCIO_CONFIG"
    if parser.has_section("database") and "RUCIO_CLIENT_MODE" not in os.environ:
        logger.info("%s has a [database] section as well as [client]: using it in client mode", path)
        os.environ["RUCIO_CLIENT_MODE"] = "1"
    return ""


#: rucio-clients exceptions that mean the server could not be reached (a service error, worth a retry)
UNREACHABLE = ("ServerConnectionException", "ConnectionError", "CannotAuthenticate")


def new_client(tool: str = "rucio", is_stagein: bool = True) -> Any:
    """A rucio-clients ``Client``, or a classified PilotException (configuration, import, connection).

    The one place that makes a Rucio client for the copytools (``rucio``, ``objectstore``).
    """
    problem = config_problem()
    if problem:
        raise PilotException(f"{tool} copytool: {problem}", code=ErrorCodes.RUCIOSERVICEUNAVAILABLE,
                             state="CONTEXT_FAIL", kind="config")
    try:
        from rucio.client import Client
    except ImportError as exc:
        raise PilotException(f"rucio-clients is not installed: {exc}", code=ErrorCodes.MIDDLEWAREIMPORTFAILURE,
                             state="COPY_ERROR", kind="config") from None
    try:
        return Client()
    except Exception as exc:
        down = "service unavailable: " if type(exc).__name__ in UNREACHABLE else ""
        raise transfer_error(f"cannot connect to Rucio: {down}{type(exc).__name__}: {exc}", is_stagein) from None


def _clients() -> Any:
    """Download/Upload clients for one call (cheap: the token is cached on disk).

    Not kept per thread: a thread's leftovers are destroyed when it ends, which is slow for these clients
    and delays the moment the pilot's supervisor sees the thread gone.
    """
    client = new_client()
    from rucio.client.downloadclient import DownloadClient
    from rucio.client.uploadclient import UploadClient
    rucio_logger = _LoggerAdapter(logging.getLogger("rucio.client"))
    return types.SimpleNamespace(download=DownloadClient(client=client, logger=rucio_logger, tracing=False),
                                 upload=UploadClient(_client=client, logger=rucio_logger, tracing=False))


class _LoggerAdapter:
    """Rucio's clients call ``logger.log(level, msg)`` in one place and ``logger(level, msg)`` in another."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log.log
        self.debug = log.debug

    def __call__(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        self.log(level, msg, *args, **kwargs)


def copy_in(files: list, **kwargs: Any) -> list:
    """Download each file into its work dir."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    for fspec in files:
        try:
            _download(fspec, opts)
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
    return files


def _download(fspec: FileSpec, opts: CopytoolOptions) -> None:
    dst = local_file_path(fspec, opts.workdir)
    item = {"did": f"{fspec.scope}:{fspec.lfn}", "base_dir": os.path.dirname(dst), "no_subdir": True,
            "transfer_timeout": get_timeout(fspec.filesize)}
    clients = _clients()
    traces: list = []
    options = {"num_threads": 1, "deactivate_file_download_exceptions": True, "traces_copy_out": traces}
    try:
        if fspec.turl and fspec.ddmendpoint:
            item.update(pfn=fspec.turl, rse=fspec.ddmendpoint)
            if fspec.checksum.get("adler32"):
                item["adler32"] = fspec.checksum["adler32"]
            result = clients.download.download_pfns([dict(item)], **options)
        else:
            if fspec.ddmendpoint:
                item["rse"] = fspec.ddmendpoint
            result = clients.download.download_dids([dict(item)], **options)
    except PilotException:
        raise
    except Exception as exc:
        raise transfer_error(f"{type(exc).__name__}: {exc}", is_stagein=True) from None
    outcome = result[0] if result else {}
    if outcome.get("clientState") not in DOWNLOADED:
        raise download_error(fspec, outcome, traces[-1] if traces else {})
    _downloaded(fspec, item, outcome)


def download_error(fspec: FileSpec, outcome: dict, trace: dict) -> PilotException:
    """A classified error from Rucio's result state and the reason in its trace (the result has none)."""
    state = outcome.get("clientState") or "FAILED"
    reason = str(trace.get("stateReason") or "")
    if state == "FILE_NOT_FOUND":
        reason = f"file not found (no source): {reason}"
    elif trace.get("clientState") == "FAIL_VALIDATE" and "checksum" not in reason.lower():
        reason = f"checksum validation failed: {reason}"
    return transfer_error(f"rucio download of {fspec.scope}:{fspec.lfn} ended in {state}: {reason}", is_stagein=True)


def _downloaded(fspec: FileSpec, item: dict, result: dict) -> None:
    """Record a finished download: the PFN used, and the adler32 Rucio verified (saves reading the file again)."""
    if result.get("pfn"):
        fspec.turl = result["pfn"]
    if item.get("adler32"):
        fspec.remote_checksum = {"adler32": item["adler32"]}
    fspec.status, fspec.status_code = "transferred", 0


def xrootd_storages(client: Any, rses: set) -> set:
    """The storages whose root:// reads rucio-clients does with its XRootD implementation (plain xrdcp)."""
    found = set()
    for rse in sorted(r for r in rses if r):
        try:
            info = client.get_protocols(rse, scheme="root")
        except Exception as exc:  # no such protocol, Rucio unreachable: download_pfns decides
            logger.debug("no root protocol of %s: %s", rse, exc)
            continue
        protocols = info.get("protocols", []) if isinstance(info, dict) else info  # the RSE record, or a list
        if any(isinstance(p, dict) and p.get("scheme") == "root" and p.get("impl") == XROOTD_IMPL
               for p in protocols or []):
            found.add(rse)
    return found


def _bulk_xrdcp(files: list, clients: Any, opts: CopytoolOptions) -> None:
    """Fetch the root:// replicas on XRootD-implemented storages with one xrdcp per directory (see module doc)."""
    from pilot.copytool import xrdcp

    if getattr(clients.download, "auth_token", None):
        return  # rucio-clients would pass its bearer token (JWT) to xrdcp: leave these to it
    candidates = [f for f in files if f.status is None and (f.turl or "").startswith("root://") and f.ddmendpoint]
    if len(candidates) < 2:
        return
    storages = xrootd_storages(clients.download.client, {f.ddmendpoint for f in candidates})
    chosen = [f for f in candidates if f.ddmendpoint in storages]
    if chosen:
        xrdcp.copy_in_bulk(chosen, **opts.call_kwargs(xrootd_env={"XrdSecPROTOCOL": "gsi"}))
        done = sum(1 for f in chosen if f.status == "transferred")
        logger.info("rucio bulk: %d of %d root:// file(s) fetched with one xrdcp", done, len(chosen))


def copy_in_bulk(files: list, **kwargs: Any) -> list:
    """Download the files that have a chosen replica: root:// ones with one xrdcp where Rucio would run
    xrdcp per file, the rest with one ``download_pfns`` call (Rucio's own threads).

    Files without a replica, and files whose download did not end in DONE, are left (status None) for the
    per-file path (see :mod:`pilot.api.bulk`).
    """
    opts = CopytoolOptions.from_kwargs(kwargs)
    clients = _clients()
    _bulk_xrdcp(files, clients, opts)
    items, by_did = [], {}
    for fspec in files:
        if fspec.status == "transferred":
            continue
        if not (fspec.turl and fspec.ddmendpoint):
            continue
        dst = local_file_path(fspec, opts.workdir)
        item = {"did": f"{fspec.scope}:{fspec.lfn}", "base_dir": os.path.dirname(dst), "no_subdir": True,
                "pfn": fspec.turl, "rse": fspec.ddmendpoint, "transfer_timeout": get_timeout(fspec.filesize)}
        if fspec.checksum.get("adler32"):
            item["adler32"] = fspec.checksum["adler32"]
        items.append(item)
        by_did[item["did"]] = (fspec, dict(item))
    if not items:
        return files
    threads = max(1, min(len(items), opts.max_workers))
    try:
        results = clients.download.download_pfns(items, num_threads=threads,
                                                 deactivate_file_download_exceptions=True)
    except PilotException:
        raise
    except Exception as exc:
        raise transfer_error(f"{type(exc).__name__}: {exc}", is_stagein=True) from None
    for result in results or []:
        did = result.get("did") or f"{result.get('scope')}:{result.get('name')}"
        if did in by_did and result.get("clientState") in DOWNLOADED:
            fspec, item = by_did[did]
            _downloaded(fspec, item, result)
    return files


def copy_out(files: list, **kwargs: Any) -> list:
    """Upload each file to its storage; summary in <workdir>/rucio_upload.json."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    for fspec in files:
        try:
            _upload(fspec, opts)
            fspec.status, fspec.status_code = "transferred", 0
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
    return files


def _upload(fspec: FileSpec, opts: CopytoolOptions) -> None:
    src = local_file_path(fspec, opts.workdir)
    rse = fspec.ddmendpoint_alt if fspec.is_altstaged else fspec.ddmendpoint
    if not rse:
        raise PilotException(f"no storage for {fspec.lfn}", code=1133, state="NO_PROTOCOL", kind="config")
    item = {"path": src, "rse": rse, "did_scope": fspec.scope, "did_name": fspec.lfn,
            "no_register": opts.no_register is not False, "transfer_timeout": get_timeout(fspec.filesize)}
    if fspec.guid:
        item["guid"] = fspec.guid.replace("-", "") if len(fspec.guid) == 36 else fspec.guid
    if opts.lifetime:
        item["lifetime"] = opts.lifetime
    if fspec.dataset and not item["no_register"]:
        item["dataset_scope"], item["dataset_name"] = fspec.scope, fspec.dataset
    summary_path = os.path.join(os.path.dirname(src), SUMMARY_FILE)
    remove_file(summary_path)  # a name the payload may have planted (a link): the client writes a new file
    clients = _clients()
    try:
        clients.upload.upload([item], summary_file_path=summary_path)
    except PilotException:
        raise
    except Exception as exc:
        if type(exc).__name__ in ("NoFilesUploaded", "FileReplicaAlreadyExists"):
            # Rucio skips (or refuses) a file already on the RSE without comparing it: compare here
            found = existing_adler32(clients, rse, fspec)
            if found is not None:
                settle_existing(fspec, f"{rse}:{fspec.scope}:{fspec.lfn}", found)
                return
        raise transfer_error(f"{type(exc).__name__}: {exc}", is_stagein=False) from None
    _read_summary(fspec, summary_path)


def existing_adler32(clients: Any, rse: str, fspec: FileSpec) -> Any:
    """The adler32 of the file already at its place on ``rse`` ('' unknown), None when nothing is there."""
    try:
        from rucio.rse import rsemanager as rsemgr

        info = rsemgr.get_rse_info(rse, vo=clients.upload.client.vo)
        did = {"scope": fspec.scope, "name": fspec.lfn}
        pfn = list(rsemgr.lfns2pfns(info, [did], operation="write").values())[0]
        protocol = rsemgr.create_protocol(info, "read")
        protocol.connect()
        try:
            if not protocol.exists(pfn):
                return None
            try:
                return str(protocol.stat(pfn).get("adler32") or "")
            except Exception:  # the protocol cannot stat: an existing file of unknown content
                return ""
        finally:
            protocol.close()
    except Exception as exc:
        logger.warning("cannot look at %s:%s on %s: %s", fspec.scope, fspec.lfn, rse, exc)
        return None


def _read_summary(fspec: FileSpec, path: str) -> None:
    from pilot.util.safefile import open_checked

    try:
        with open_checked(path) as handle:
            if handle.size > SUMMARY_MAX:
                raise ValueError(f"{handle.size} bytes, more than a summary can be")
            summary = json.loads(handle.read())
    except (OSError, ValueError, PilotException) as exc:
        logger.warning("no usable %s: %s", path, exc)
        return
    entry = summary.get(f"{fspec.scope}:{fspec.lfn}") or {}
    if entry.get("pfn"):
        fspec.surl = fspec.turl = entry["pfn"]
    if entry.get("adler32"):
        fspec.remote_checksum = {"adler32": entry["adler32"]}
