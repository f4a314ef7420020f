"""The ``s3`` copytool: objects on an S3 endpoint, through boto3 (an optional dependency).

URLs are ``s3://host:port/<bucket>/<key>`` (HTTPS), or ``https://`` / ``http://host:port/<bucket>/<key>``
(path-style addressing). The storage's protocol endpoint and path give the bucket, e.g. endpoint
``s3://s3.example.org:443`` and path ``/atlas-logs``; the key is the LFN on an object store (type
``OS_*``) or the deterministic ``<scope>/<xx>/<yy>/<lfn>`` path otherwise.

Credentials, first found: the ``access_key``/``secret_key`` (and ``region``, ``is_secure``) settings of the
storage protocol (``rprotocols[<id>].settings``) whose endpoint matches the URL, then boto3's own chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, the profile named by ``PANDA_PILOT_AWS_PROFILE``, ...).
``is_secure: false`` turns an ``s3://`` URL into plain HTTP.

S3 has no adler32: a download is checked by the Data API against the job's checksum (it reads the
file); an upload is checked by size (``HEAD``), boto3 sends the body's checksum for the server to
verify, and the local adler32 is stored as object metadata ``adler32``. An object is never replaced: a
``HEAD`` first, and an existing object with the same ``adler32`` metadata is a success, any other 1221
FILEEXISTS. Transfers run in-process; a
cancel (the transfer's stop event) is looked at in boto3's progress callback, so it also stops the
object being moved, within one chunk.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any, Mapping, Optional
from urllib.parse import urlparse

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool.common import (cancelled_error, get_timeout, local_file_path, mark_failed, settle_existing,
                                   transfer_error)
from pilot.copytool.options import CopytoolOptions
from pilot.util.filehandling import remove_file

if TYPE_CHECKING:
    from pilot.info.filespec import FileSpec

logger = logging.getLogger(__name__)

require_replicas = False
require_input_protocols = True
require_protocols = True
allowed_schemas = ["s3", "https", "http"]
check_availablespace = True


def is_valid_for_copy_in(files: list) -> bool:
    """Every file needs an LFN."""
    return all(f.lfn for f in files)


def is_valid_for_copy_out(files: list) -> bool:
    """Every file needs an LFN."""
    return all(f.lfn for f in files)


def split_url(url: str, secure: bool = True) -> tuple:
    """``(endpoint_url, bucket, key)`` of an S3 URL (``s3://`` means HTTPS unless ``secure`` is False)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("s3", "https", "http") or not parsed.netloc:
        raise PilotException(f"not an S3 URL: {url}", code=ErrorCodes.NOSTORAGEPROTOCOL, state="NO_PROTOCOL",
                             kind="config")
    scheme = parsed.scheme if parsed.scheme != "s3" else ("https" if secure else "http")
    parts = parsed.path.lstrip("/").split("/", 1)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise PilotException(f"S3 URL without bucket and key: {url}", code=ErrorCodes.NOSTORAGEPROTOCOL,
                             state="NO_PROTOCOL", kind="config")
    return f"{scheme}://{parsed.netloc}", parts[0], parts[1]


def protocol_settings(url: str, fspec: FileSpec, ddmconf: Optional[Mapping[str, Any]]) -> dict:
    """The settings of the storage protocol whose endpoint serves ``url`` ({} when none)."""
    storage = (ddmconf or {}).get(fspec.ddmendpoint)
    if storage is None:
        return {}
    if fspec.protocol_id is not None and storage.protocol_settings(fspec.protocol_id):
        return storage.protocol_settings(fspec.protocol_id)
    netloc = urlparse(url).netloc
    for entry in (storage.rprotocols or {}).values():
        if isinstance(entry, dict) and urlparse(str(entry.get("endpoint", ""))).netloc == netloc:
            return dict(entry.get("settings") or {})
    return {}


def _client(endpoint: str, settings: dict, timeout: int, clients: dict) -> Any:
    """A boto3 S3 client for an endpoint and key, shared by the files of one call (``clients``)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise PilotException(f"boto3 is not installed: {exc}", code=ErrorCodes.MISSINGCREDENTIALS,
                             state="S3_ERROR", kind="config") from None
    key = (endpoint, settings.get("access_key"), settings.get("secret_key"), settings.get("region"), timeout)
    if key not in clients:
        session = boto3.Session(profile_name=os.environ.get("PANDA_PILOT_AWS_PROFILE") or None)
        options = {"endpoint_url": endpoint, "region_name": settings.get("region") or "us-east-1",
                   "config": Config(connect_timeout=30, read_timeout=timeout, retries={"max_attempts": 2},
                                    s3={"addressing_style": "path"})}
        if settings.get("access_key") and settings.get("secret_key"):
            options.update(aws_access_key_id=settings["access_key"], aws_secret_access_key=settings["secret_key"])
        clients[key] = session.client("s3", **options)
    return clients[key]


def close_clients(clients: dict) -> None:
    """Close the clients of a call now (not whenever the thread that made them ends)."""
    for client in clients.values():
        try:
            client.close()
        except Exception as exc:  # closing is best effort
            logger.debug("closing an S3 client: %s", exc)


def target(url: str, fspec: FileSpec, opts: CopytoolOptions, clients: dict, settings: Optional[dict] = None) -> tuple:
    """``(client, bucket, key)`` for ``url``; ``settings`` default to the storage protocol's."""
    if settings is None:
        settings = protocol_settings(url, fspec, opts.ddmconf)
    secure = str(settings.get("is_secure", "true")).lower() not in ("false", "0", "no")
    endpoint, bucket, key = split_url(url, secure)
    return _client(endpoint, settings, get_timeout(fspec.filesize), clients), bucket, key


def s3_error(exc: Exception, url: str, is_stagein: bool) -> PilotException:
    """A classified PilotException for a boto3/botocore error."""
    text = f"{type(exc).__name__}: {exc}"
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) if hasattr(exc, "response") else ""
    if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
        text = f"No such file: {url} ({text})"
    elif code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        text = f"S3 credentials refused for {url} ({text})"
    return transfer_error(text, is_stagein)


def copy_in(files: list, **kwargs: Any) -> list:
    """Download each object into the work dir (through ``<file>.part``)."""
    clients: dict = {}
    try:
        _copy_in(files, CopytoolOptions.from_kwargs(kwargs), clients)
    finally:
        close_clients(clients)
    return files


def _copy_in(files: list, opts: CopytoolOptions, clients: dict) -> None:
    for fspec in files:
        try:
            if not fspec.turl:
                raise PilotException(f"no replica for {fspec.lfn}", code=ErrorCodes.NOREPLICAS, state="NO_REPLICA",
                                     kind="missing")
            client, bucket, key = target(fspec.turl, fspec, opts, clients)
            download(client, bucket, key, local_file_path(fspec, opts.workdir), fspec.turl, stop=opts.stop_event)
            fspec.status, fspec.status_code = "transferred", 0
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise


def copy_out(files: list, **kwargs: Any) -> list:
    """Upload each file to its SURL; the object's size is checked afterwards."""
    clients: dict = {}
    try:
        _copy_out(files, CopytoolOptions.from_kwargs(kwargs), clients)
    finally:
        close_clients(clients)
    return files


def _copy_out(files: list, opts: CopytoolOptions, clients: dict) -> None:
    for fspec in files:
        try:
            if not fspec.surl:
                raise PilotException(f"no destination for {fspec.lfn}", code=ErrorCodes.NOSTORAGEPROTOCOL,
                                     state="NO_PROTOCOL", kind="config")
            client, bucket, key = target(fspec.surl, fspec, opts, clients)
            found = existing_adler32(client, bucket, key, fspec.surl)
            if found is not None:  # never overwrite an object: the same file is a success, else 1221
                settle_existing(fspec, fspec.surl, found)
                continue
            src = local_file_path(fspec, opts.workdir)
            metadata = {"adler32": fspec.checksum["adler32"]} if fspec.checksum.get("adler32") else {}
            size = upload(client, bucket, key, src, fspec.surl, metadata, stop=opts.stop_event)
            if fspec.filesize and size != int(fspec.filesize):
                raise PilotException(f"size of {fspec.surl} is {size} B, not {fspec.filesize} B",
                                     code=ErrorCodes.STAGEOUTFAILED, state="FS_MISMATCH", kind="checksum")
            fspec.turl = fspec.surl
            fspec.status, fspec.status_code = "transferred", 0
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise


class _Cancelled(Exception):
    """Raised from boto3's progress callback when the transfer's stop event is set."""


def _watch(stop: Optional[threading.Event]) -> Optional[Any]:
    """A boto3 progress callback that stops the transfer once ``stop`` is set (None without a stop event)."""
    if stop is None:
        return None

    def progress(_bytes: int) -> None:
        if stop.is_set():
            raise _Cancelled()

    return progress


def download(client: Any, bucket: str, key: str, dst: str, url: str, stop: Optional[threading.Event] = None) -> None:
    """Fetch one object to ``dst`` (through ``<dst>.part``); classified PilotException on failure."""
    try:
        client.download_file(bucket, key, dst + ".part", Callback=_watch(stop))
        if stop is not None and stop.is_set():
            raise _Cancelled()
        os.replace(dst + ".part", dst)
    except _Cancelled:
        remove_file(dst + ".part")
        raise cancelled_error(f"download of {url} stopped", True) from None
    except Exception as exc:
        remove_file(dst + ".part")
        raise s3_error(exc, url, True) from None


def existing_adler32(client: Any, bucket: str, key: str, url: str) -> Optional[str]:
    """None when no object is at ``bucket/key``; else its ``adler32`` metadata ('' when it has none).

    An object without the metadata the pilot stores cannot be shown to be the same file: it counts as
    different (1221), so it is never replaced.
    """
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) if hasattr(exc, "response") else ""
        if code in ("404", "NoSuchKey", "NotFound"):
            return None
        raise s3_error(exc, url, False) from None
    return str((head.get("Metadata") or {}).get("adler32") or "")


def upload(client: Any, bucket: str, key: str, source: Any, url: str, metadata: dict,
           stop: Optional[threading.Event] = None) -> int:
    """Store ``source`` (a path or a readable file object) as one object; returns the object's size."""
    try:
        if isinstance(source, str):
            client.upload_file(source, bucket, key, ExtraArgs={"Metadata": metadata}, Callback=_watch(stop))
        else:
            client.upload_fileobj(source, bucket, key, ExtraArgs={"Metadata": metadata}, Callback=_watch(stop))
        return int(client.head_object(Bucket=bucket, Key=key).get("ContentLength", -1))
    except _Cancelled:
        raise cancelled_error(f"upload to {url} stopped", False) from None
    except Exception as exc:
        raise s3_error(exc, url, False) from None
