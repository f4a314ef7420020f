"""The ``objectstore`` copytool: object stores that Rucio knows as RSEs (OS_ES, OS_LOGS, S3 data disks).

Bytes move through the ``s3`` tool's boto3 helpers (:mod:`pilot.copytool.s3`); this module adds what makes
the object store a Rucio storage:

* **Stage-in**: the Data API asks Rucio for the file's ``s3://`` replicas (``require_replicas``; the queue's
  storage protocols are the fallback for files Rucio does not know) and this tool downloads the chosen
  one. The Data API then checks size and adler32 of what arrived against the job's (or Rucio's) values.
* **Stage-out**: the Data API resolves the SURL on the file's storage (``<endpoint><path><lfn>`` on an
  ``OS_*`` storage, the deterministic ``<scope>/xx/yy/<lfn>`` otherwise). The tool uploads the file while
  computing the adler32 of the bytes it sends (the Data API compares it with the local one), checks the
  object's size and registers the replica in Rucio (``add_replicas``: size, adler32, guid; the PFN on a
  non-deterministic RSE) unless ``no_register=True`` is passed.

S3 keys, first found (see :func:`resolve_credentials`):

1. PanDA's ``getKeyPair``: on an object-store storage whose protocol settings name the keys
   (``access_key``/``secret_key``), when the caller passes a ``communicator`` (anything with
   ``get_key_pair(public_name, private_name)``) to ``transfer()``;
2. the environment variables ``S3_ACCESS_KEY``/``S3_SECRET_KEY`` (and ``S3_IS_SECURE``);
3. the ``s3`` tool's own lookup: the protocol settings taken as the keys themselves, then boto3's chain.
"""

from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool import s3
from pilot.copytool.rucio import UNREACHABLE
from pilot.copytool.common import (deterministic_path, join_url, local_file_path, mark_failed, settle_existing,
                                   transfer_error)
from pilot.copytool.options import CopytoolOptions
from pilot.util.safefile import open_checked

if TYPE_CHECKING:
    from pilot.info.filespec import FileSpec

logger = logging.getLogger(__name__)

require_replicas = True
require_input_protocols = True
require_protocols = True
allowed_schemas = ["s3"]
check_availablespace = True

OBJECT_STORE_TYPES = ("OS_ES", "OS_LOGS")
ENV_ACCESS, ENV_SECRET, ENV_SECURE = "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_IS_SECURE"


def is_valid_for_copy_in(files: list) -> bool:
    """Every file needs a scope and an LFN (Rucio names it by both)."""
    return all(f.lfn and f.scope for f in files)


def is_valid_for_copy_out(files: list) -> bool:
    """Every file needs a scope and an LFN (Rucio names it by both)."""
    return all(f.lfn and f.scope for f in files)


# ---------------------------------------------------------------------- where objects live
def is_object_store(storage: Any) -> bool:
    """Whether a storage record is an object store of the event service or the logs."""
    return str(getattr(storage, "type", "") or "").upper() in OBJECT_STORE_TYPES


def object_path(fspec: FileSpec, storage: Any) -> str:
    """The object's path below the protocol path: the deterministic path, or the LFN on an OS_* storage."""
    if storage.is_deterministic:
        return deterministic_path(fspec.scope, fspec.lfn)
    if "OS_" in str(storage.type or "").upper():
        return fspec.lfn
    raise PilotException(f"cannot place {fspec.lfn} on the non-deterministic storage {storage.name}",
                         code=ErrorCodes.NONDETERMINISTICDDM, state="NO_PROTOCOL", kind="config")


def resolve_surl(fspec: FileSpec, protocol: dict, ddmconf: dict, **kwargs: Any) -> dict:
    """``{'surl': ...}`` of ``fspec`` on its storage for ``protocol`` (records the protocol id)."""
    storage = (ddmconf or {}).get(fspec.ddmendpoint)
    if storage is None:
        raise PilotException(f"no storage data for {fspec.ddmendpoint}", code=ErrorCodes.NOSTORAGE,
                             state="NO_PROTOCOL", kind="config")
    surl = join_url(protocol.get("endpoint", ""), protocol.get("path", ""), object_path(fspec, storage))
    if protocol.get("id") is not None:
        fspec.protocol_id = protocol["id"]
    return {"surl": surl}


# ---------------------------------------------------------------------- credentials
@dataclass
class Credentials:
    """The settings handed to the s3 helpers, and where the keys came from."""

    settings: dict = field(default_factory=dict)
    source: str = "s3"  # 'getKeyPair', 'environment' or 's3' (the s3 tool's own lookup)


def _flag(value: Any) -> Optional[bool]:
    if value is None or value == "":
        return None
    return str(value).strip().lower() not in ("false", "0", "no", "off")


def key_pair_names(settings: dict) -> Optional[tuple]:
    """``(public_name, private_name)`` the protocol settings name for getKeyPair, or None."""
    public, private = settings.get("access_key"), settings.get("secret_key")
    return (str(public), str(private)) if public and private else None


def fetch_key_pair(communicator: Any, names: tuple) -> dict:
    """``{'publicKey', 'privateKey'}`` from PanDA's getKeyPair, {} when the server gives none."""
    try:
        reply = communicator.get_key_pair(*names) or {}
    except Exception as exc:  # the server is asked best effort: the next source may still work
        logger.warning("getKeyPair(%s, %s) failed: %s", names[0], names[1], exc)
        return {}
    if str(reply.get("StatusCode", "0")) != "0" or not reply.get("privateKey") or not reply.get("publicKey"):
        logger.warning("getKeyPair(%s, %s) gave no keys: StatusCode %s", names[0], names[1],
                       reply.get("StatusCode"))
        return {}
    return {"publicKey": str(reply["publicKey"]), "privateKey": str(reply["privateKey"])}


def resolve_credentials(settings: dict, storage: Any, environ: dict, communicator: Any = None,
                        cache: Optional[dict] = None) -> Credentials:
    """The S3 settings for one storage protocol (getKeyPair, then environment, then the s3 tool's lookup).

    ``cache`` keeps getKeyPair answers for the files of one call, keyed by the key names.
    """
    settings = dict(settings or {})
    names = key_pair_names(settings)
    if communicator is not None and names and is_object_store(storage):
        cache = {} if cache is None else cache
        if names not in cache:
            cache[names] = fetch_key_pair(communicator, names)
        pair = cache[names]
        if pair:
            settings.update(access_key=pair["publicKey"], secret_key=pair["privateKey"])
            return Credentials(settings, "getKeyPair")
    if environ.get(ENV_ACCESS) and environ.get(ENV_SECRET):
        settings.update(access_key=environ[ENV_ACCESS], secret_key=environ[ENV_SECRET])
        if _flag(environ.get(ENV_SECURE)) is not None:
            settings["is_secure"] = _flag(environ.get(ENV_SECURE))
        return Credentials(settings, "environment")
    if _flag(settings.get("is_secure")) is None and _flag(environ.get(ENV_SECURE)) is not None:
        settings["is_secure"] = _flag(environ.get(ENV_SECURE))
    return Credentials(settings, "s3")


def _credentials(url: str, fspec: FileSpec, opts: CopytoolOptions, cache: dict) -> Credentials:
    storage = opts.ddmconf.get(fspec.ddmendpoint)
    settings = s3.protocol_settings(url, fspec, opts.ddmconf)
    creds = resolve_credentials(settings, storage, dict(os.environ), opts.communicator, cache)
    logger.info("S3 keys for %s from %s", fspec.ddmendpoint or url, creds.source)
    return creds


# ---------------------------------------------------------------------- stage-in
def copy_in(files: list, **kwargs: Any) -> list:
    """Download each file's chosen replica (``fspec.turl``) into its work dir."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    clients: dict = {}
    keys: dict = {}
    try:
        for fspec in files:
            try:
                _download(fspec, opts, clients, keys)
            except PilotException as exc:
                mark_failed(fspec, exc)
                raise
    finally:
        s3.close_clients(clients)
    return files


def _download(fspec: FileSpec, opts: CopytoolOptions, clients: dict, keys: dict) -> None:
    url = fspec.turl or fspec.surl
    if not url:
        raise PilotException(f"no replica of {fspec.scope}:{fspec.lfn}", code=ErrorCodes.NOREPLICAS,
                             state="NO_REPLICA", kind="missing")
    creds = _credentials(url, fspec, opts, keys)
    client, bucket, key = s3.target(url, fspec, opts, clients, creds.settings)
    s3.download(client, bucket, key, local_file_path(fspec, opts.workdir), url, stop=opts.stop_event)
    fspec.turl = url
    fspec.status, fspec.status_code = "transferred", 0


# ---------------------------------------------------------------------- stage-out
class Adler32Reader:
    """A read-only, non-seekable view of a file that sums the adler32 of the bytes read through it."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.value = 1
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.value = zlib.adler32(data, self.value)
        self.size += len(data)
        return data

    def seekable(self) -> bool:
        return False

    @property
    def hexdigest(self) -> str:
        return f"{self.value & 0xffffffff:08x}"


def copy_out(files: list, **kwargs: Any) -> list:
    """Upload each file to its SURL and register it in Rucio (``no_register=True``: upload only)."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    clients: dict = {}
    keys: dict = {}
    try:
        for fspec in files:
            try:
                _upload(fspec, opts, clients, keys)
                if not opts.no_register and _intact(fspec):
                    register(fspec, opts)
                fspec.status, fspec.status_code = "transferred", 0
            except PilotException as exc:
                mark_failed(fspec, exc)
                raise
    finally:
        s3.close_clients(clients)
    return files


def _upload(fspec: FileSpec, opts: CopytoolOptions, clients: dict, keys: dict) -> None:
    if not fspec.surl:
        raise PilotException(f"no destination for {fspec.lfn}", code=ErrorCodes.NOSTORAGEPROTOCOL,
                             state="NO_PROTOCOL", kind="config")
    creds = _credentials(fspec.surl, fspec, opts, keys)
    client, bucket, key = s3.target(fspec.surl, fspec, opts, clients, creds.settings)
    found = s3.existing_adler32(client, bucket, key, fspec.surl)
    if found is not None:  # never overwrite an object: the same file is a success, else 1221
        settle_existing(fspec, fspec.surl, found)
        return
    metadata = {"adler32": fspec.checksum["adler32"]} if fspec.checksum.get("adler32") else {}
    with open_checked(local_file_path(fspec, opts.workdir)) as handle:
        reader = Adler32Reader(handle)
        size = s3.upload(client, bucket, key, reader, fspec.surl, metadata, stop=opts.stop_event)
    if size != reader.size:
        raise PilotException(f"size of {fspec.surl} is {size} B, {reader.size} B were sent",
                             code=ErrorCodes.STAGEOUTFAILED, state="FS_MISMATCH", kind="checksum")
    fspec.remote_checksum = {"adler32": reader.hexdigest}  # compared with the local adler32 by the Data API
    fspec.turl = fspec.surl


def _intact(fspec: FileSpec) -> bool:
    """Whether the bytes sent have the local adler32 (if not, nothing is registered and the Data API's
    output verification reports the mismatch)."""
    local, sent = fspec.checksum.get("adler32"), fspec.remote_checksum.get("adler32")
    if local and sent and local.lower().zfill(8) != sent.lower().zfill(8):
        logger.warning("%s: sent adler32 %s, local %s: not registered", fspec.lfn, sent, local)
        return False
    return True


# ---------------------------------------------------------------------- Rucio
def rucio_client() -> Any:
    """A rucio-clients ``Client`` (classified PilotException when it cannot be made)."""
    from pilot.copytool.rucio import new_client

    return new_client("objectstore", is_stagein=False)


def replica_record(fspec: FileSpec, deterministic: bool) -> dict:
    """The ``add_replicas`` entry of an uploaded file (its PFN only on a non-deterministic RSE)."""
    record = {"scope": fspec.scope, "name": fspec.lfn, "bytes": int(fspec.filesize or 0),
              "adler32": (fspec.remote_checksum or {}).get("adler32") or fspec.checksum.get("adler32")}
    if fspec.guid:
        record["meta"] = {"guid": fspec.guid.replace("-", "")}
    if not deterministic:
        record["pfn"] = fspec.surl
    return record


def register(fspec: FileSpec, kwargs: Union[CopytoolOptions, Mapping[str, Any]], client: Any = None) -> None:
    """Register the uploaded object as a replica on its RSE (one ``add_replicas`` call)."""
    rse = fspec.ddmendpoint_alt if fspec.is_altstaged else fspec.ddmendpoint
    storage = CopytoolOptions.of(kwargs).ddmconf.get(rse) if rse else None
    deterministic = bool(getattr(storage, "is_deterministic", False)) if storage is not None else False
    client = client or rucio_client()
    try:
        client.add_replicas(rse=rse, files=[replica_record(fspec, deterministic)])
    except Exception as exc:
        down = "service unavailable: " if type(exc).__name__ in UNREACHABLE else ""
        raise transfer_error(f"Rucio registration of {fspec.scope}:{fspec.lfn} on {rse} failed: {down}"
                             f"{type(exc).__name__}: {exc}", is_stagein=False) from None
    logger.info("registered %s:%s on %s", fspec.scope, fspec.lfn, rse)
