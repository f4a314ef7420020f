"""The ``rucio`` copytool: the rucio-clients API (DownloadClient / UploadClient).

Stage-in downloads the replica the Data API chose (``download_pfns`` with its PFN and storage), or
lets Rucio pick one (``download_dids``) when no replica is known. Stage-out uploads to the file's
storage (``ddmendpoint``, or ``ddmendpoint_alt`` after a failure) without registering the file
(``no_register=True`` unless the caller says otherwise: PanDA registers outputs), writes Rucio's
summary to ``<workdir>/rucio_upload.json`` and takes the PFN and adler32 from it. Rucio's own traces
are off: the Data API sends one trace per file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

from pilot.common.exception import PilotException
from pilot.copytool.common import get_timeout, local_file_path, mark_failed, transfer_error

logger = logging.getLogger(__name__)

require_replicas = True
require_input_protocols = False
require_protocols = False
allowed_schemas = ["root", "davs", "https", "file", "srm", "gsiftp", "storm"]
check_availablespace = True

SUMMARY_FILE = "rucio_upload.json"
_local = threading.local()


def is_valid_for_copy_in(files: list) -> bool:
    """Every file needs a scope and an LFN."""
    return all(f.lfn and f.scope for f in files)


def is_valid_for_copy_out(files: list) -> bool:
    """Every file needs a scope and an LFN."""
    return all(f.lfn and f.scope for f in files)


def _clients() -> Any:
    """Per-thread Download/Upload clients (creating one authenticates against the server)."""
    if getattr(_local, "download", None) is None:
        try:
            from rucio.client import Client
            from rucio.client.downloadclient import DownloadClient
            from rucio.client.uploadclient import UploadClient
        except ImportError as exc:
            raise PilotException(f"rucio-clients is not installed: {exc}", code=1342, state="COPY_ERROR",
                                 kind="config") from None
        try:
            client = Client()
        except Exception as exc:
            raise transfer_error(f"cannot connect to Rucio: {exc}", is_stagein=True) from None
        rucio_logger = _LoggerAdapter(logging.getLogger("rucio.client"))
        _local.download = DownloadClient(client=client, logger=rucio_logger, tracing=False)
        _local.upload = UploadClient(_client=client, logger=rucio_logger, tracing=False)
    return _local


class _LoggerAdapter:
    """Rucio's clients call ``logger.log(level, msg)`` in one place and ``logger(level, msg)`` in another."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log.log
        self.debug = log.debug

    def __call__(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        self.log(level, msg, *args, **kwargs)


def copy_in(files: list, **kwargs: Any) -> list:
    """Download each file into its work dir."""
    for fspec in files:
        try:
            _download(fspec, kwargs)
            fspec.status, fspec.status_code = "transferred", 0
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
    return files


def _download(fspec: Any, kwargs: dict) -> None:
    dst = local_file_path(fspec, kwargs.get("workdir", ""))
    item = {"did": f"{fspec.scope}:{fspec.lfn}", "base_dir": os.path.dirname(dst), "no_subdir": True,
            "transfer_timeout": get_timeout(fspec.filesize)}
    clients = _clients()
    try:
        if fspec.turl and fspec.ddmendpoint:
            item.update(pfn=fspec.turl, rse=fspec.ddmendpoint)
            if fspec.checksum.get("adler32"):
                item["adler32"] = fspec.checksum["adler32"]
            result = clients.download.download_pfns([item], num_threads=1)
        else:
            if fspec.ddmendpoint:
                item["rse"] = fspec.ddmendpoint
            result = clients.download.download_dids([item], num_threads=1)
    except PilotException:
        raise
    except Exception as exc:
        raise transfer_error(f"{type(exc).__name__}: {exc}", is_stagein=True) from None
    state = (result[0] if result else {}).get("clientState", "")
    if state not in ("DONE", "ALREADY_DONE"):
        raise transfer_error(f"rucio download of {fspec.lfn} ended in state {state}: {result}", is_stagein=True)
    if result[0].get("pfn"):
        fspec.turl = result[0]["pfn"]


def copy_out(files: list, **kwargs: Any) -> list:
    """Upload each file to its storage; summary in <workdir>/rucio_upload.json."""
    for fspec in files:
        try:
            _upload(fspec, kwargs)
            fspec.status, fspec.status_code = "transferred", 0
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
    return files


def _upload(fspec: Any, kwargs: dict) -> None:
    src = local_file_path(fspec, kwargs.get("workdir", ""))
    rse = fspec.ddmendpoint_alt if fspec.is_altstaged else fspec.ddmendpoint
    if not rse:
        raise PilotException(f"no storage for {fspec.lfn}", code=1133, state="NO_PROTOCOL", kind="config")
    item = {"path": src, "rse": rse, "did_scope": fspec.scope, "did_name": fspec.lfn,
            "no_register": bool(kwargs.get("no_register", True)), "transfer_timeout": get_timeout(fspec.filesize)}
    if fspec.guid:
        item["guid"] = fspec.guid.replace("-", "") if len(fspec.guid) == 36 else fspec.guid
    if kwargs.get("lifetime"):
        item["lifetime"] = kwargs["lifetime"]
    if fspec.dataset and not item["no_register"]:
        item["dataset_scope"], item["dataset_name"] = fspec.scope, fspec.dataset
    summary_path = os.path.join(os.path.dirname(src), SUMMARY_FILE)
    try:
        _clients().upload.upload([item], summary_file_path=summary_path)
    except PilotException:
        raise
    except Exception as exc:
        raise transfer_error(f"{type(exc).__name__}: {exc}", is_stagein=False) from None
    _read_summary(fspec, summary_path)


def _read_summary(fspec: Any, path: str) -> None:
    try:
        with open(path) as handle:
            summary = json.load(handle)
    except (OSError, ValueError) as exc:
        logger.warning("no usable %s: %s", path, exc)
        return
    entry = summary.get(f"{fspec.scope}:{fspec.lfn}") or {}
    if entry.get("pfn"):
        fspec.surl = fspec.turl = entry["pfn"]
    if entry.get("adler32"):
        fspec.remote_checksum = {"adler32": entry["adler32"]}
