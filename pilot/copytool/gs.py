"""The ``gs`` copytool: objects in Google Cloud Storage, through the GCS JSON API and the pilot's HTTP client.

Pilot 3's ``gs`` tool used the ``google-cloud-storage`` library; this one speaks the same JSON API
(``/storage/v1``, ``/upload/storage/v1``, ``/download/storage/v1``) over the pilot's one HTTP client,
so it needs no third-party package.

URLs: ``gs://<bucket>/<object>`` or ``https://storage.googleapis.com/<bucket>/<object>``. The service
is ``$STORAGE_EMULATOR_HOST`` when set (the variable Google's own clients read, e.g. ``localhost:9023``
or ``http://127.0.0.1:9023``), else ``https://storage.googleapis.com``. Authorisation: the OAuth2
access token in ``$GOOGLE_OAUTH_ACCESS_TOKEN`` (or in the file ``$GCS_ACCESS_TOKEN_FILE``) is sent as
``Authorization: Bearer``; a service-account key (``$GOOGLE_APPLICATION_CREDENTIALS``) is not
exchanged for a token here — a site that uses one refreshes the token outside the pilot.

Stage-in downloads the object (``?alt=media``) into the work dir; the Data API checks the job's
checksum and size. Stage-out never replaces an object: it asks for the object first (an existing
one with the same ``adler32`` metadata is a success, any other 1221), uploads with
``ifGenerationMatch=0`` (the service refuses if the object appeared meanwhile), records the local
adler32 as object metadata and checks the stored size. Objects travel through memory, bounded by the
HTTP client's reply-size cap (logs and moderate outputs, as Pilot 3 used it for).
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import quote, urlparse

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool.common import get_timeout, local_file_path, mark_failed, settle_existing, transfer_error
from pilot.copytool.options import CopytoolOptions

if TYPE_CHECKING:
    from pilot.info.filespec import FileSpec

logger = logging.getLogger(__name__)

require_replicas = False
require_input_protocols = True
require_protocols = True
allowed_schemas = ["gs", "https"]
check_availablespace = True

PUBLIC_ENDPOINT = "https://storage.googleapis.com"


def is_valid_for_copy_in(files: list) -> bool:
    """Every file needs an LFN."""
    return all(f.lfn for f in files)


def is_valid_for_copy_out(files: list) -> bool:
    """Every file needs an LFN."""
    return all(f.lfn for f in files)


def service_endpoint(environ: Optional[dict] = None) -> str:
    """``$STORAGE_EMULATOR_HOST`` (scheme http when it has none), else the public GCS endpoint."""
    env = os.environ if environ is None else environ
    host = (env.get("STORAGE_EMULATOR_HOST") or "").strip().rstrip("/")
    if not host:
        return PUBLIC_ENDPOINT
    return host if "://" in host else f"http://{host}"


def split_url(url: str) -> tuple:
    """``(bucket, object name)`` of a ``gs://`` or ``https://storage.googleapis.com/`` URL."""
    parsed = urlparse(url)
    if parsed.scheme == "gs" and parsed.netloc:
        bucket, name = parsed.netloc, parsed.path.lstrip("/")
    elif parsed.scheme in ("https", "http") and parsed.path.count("/") >= 2:
        bucket, _, name = parsed.path.lstrip("/").partition("/")
    else:
        bucket, name = "", ""
    if not bucket or not name:
        raise PilotException(f"not a GCS object URL: {url}", code=ErrorCodes.NOSTORAGEPROTOCOL, state="NO_PROTOCOL",
                             kind="config")
    return bucket, name


def auth_headers(environ: Optional[dict] = None) -> dict:
    """``Authorization: Bearer`` from ``$GOOGLE_OAUTH_ACCESS_TOKEN`` or ``$GCS_ACCESS_TOKEN_FILE`` ({} without)."""
    env = os.environ if environ is None else environ
    token = (env.get("GOOGLE_OAUTH_ACCESS_TOKEN") or "").strip()
    path = env.get("GCS_ACCESS_TOKEN_FILE") or ""
    if not token and path and os.path.isfile(path):
        with open(path, encoding="utf-8", errors="replace") as handle:
            token = handle.read(8192).strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def _client(opts: CopytoolOptions) -> Any:
    client = opts.http
    if client is not None:
        return client
    from pilot.util.https import shared_client

    return shared_client()


def _object_path(bucket: str, name: str) -> str:
    return f"b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"


def _call(opts: CopytoolOptions, url: str, body: Optional[bytes], method: str, what: str, is_stagein: bool,
          timeout: float, headers: Optional[dict] = None) -> bytes:
    """One API request; HTTP and network failures become classified PilotExceptions."""
    from pilot.util.https import HttpError

    try:
        return _client(opts).request(url, body, method=method, headers={**auth_headers(), **(headers or {})},
                                     timeout=timeout, retries=2, resend=method == "GET")
    except HttpError as exc:
        status = getattr(exc, "status", 0)
        if status == 404:
            raise transfer_error(f"No such file: {what} (HTTP 404)", is_stagein) from None
        if status in (401, 403):
            raise PilotException(f"GCS refused the credentials for {what} (HTTP {status})",
                                 code=ErrorCodes.STAGEINAUTHENTICATIONFAILURE if is_stagein
                                 else ErrorCodes.STAGEOUTAUTHENTICATIONFAILURE, state="CONTEXT_FAIL",
                                 kind="config") from None
        raise transfer_error(f"GCS {method} {what}: HTTP {status} {exc}", is_stagein) from None
    except (PilotException, OSError) as exc:
        raise transfer_error(f"GCS {method} {what}: {getattr(exc, 'diag', '') or exc}", is_stagein) from None


def object_metadata(opts: CopytoolOptions, bucket: str, name: str, timeout: float = 60) -> Optional[dict]:
    """The object's resource (size, md5Hash, metadata...), or None when there is no such object."""
    from pilot.util.https import HttpError

    url = f"{service_endpoint()}/storage/v1/{_object_path(bucket, name)}"
    try:
        raw = _client(opts).request(url, None, method="GET", headers=auth_headers(), timeout=timeout, retries=2)
    except HttpError as exc:
        if getattr(exc, "status", 0) == 404:
            return None
        raise transfer_error(f"GCS metadata of gs://{bucket}/{name}: HTTP {exc.status}", False) from None
    except (PilotException, OSError) as exc:
        raise transfer_error(f"GCS metadata of gs://{bucket}/{name}: {getattr(exc, 'diag', '') or exc}",
                             False) from None
    try:
        return json.loads(raw)
    except ValueError:
        raise transfer_error(f"GCS metadata of gs://{bucket}/{name}: not JSON", False) from None


def copy_in(files: list, **kwargs: Any) -> list:
    """Download each object (``fspec.turl``) into the work dir."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    for fspec in files:
        try:
            if not fspec.turl:
                raise PilotException(f"no replica for {fspec.lfn}", code=ErrorCodes.NOREPLICAS, state="NO_REPLICA",
                                     kind="missing")
            bucket, name = split_url(fspec.turl)
            url = f"{service_endpoint()}/download/storage/v1/{_object_path(bucket, name)}?alt=media"
            data = _call(opts, url, None, "GET", fspec.turl, True, get_timeout(fspec.filesize))
            dst = local_file_path(fspec, opts.workdir)
            part = f"{dst}.part"
            with open(part, "wb") as handle:
                handle.write(data)
            os.replace(part, dst)
            fspec.status, fspec.status_code = "transferred", 0
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
        except OSError as exc:
            error = transfer_error(f"cannot write {fspec.lfn}: {exc}", True)
            mark_failed(fspec, error)
            raise error from None
    return files


def copy_out(files: list, **kwargs: Any) -> list:
    """Upload each file to its SURL, never over an existing object; the stored size is checked."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    for fspec in files:
        try:
            _upload_one(fspec, opts)
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
    return files


def _upload_one(fspec: FileSpec, opts: CopytoolOptions) -> None:
    if not fspec.surl:
        raise PilotException(f"no destination for {fspec.lfn}", code=ErrorCodes.NOSTORAGEPROTOCOL,
                             state="NO_PROTOCOL", kind="config")
    bucket, name = split_url(fspec.surl)
    found = object_metadata(opts, bucket, name)
    if found is not None:  # never overwrite an object: the same file is a success, else 1221
        settle_existing(fspec, fspec.surl, str((found.get("metadata") or {}).get("adler32", "")))
        return
    src = local_file_path(fspec, opts.workdir)
    try:
        with open(src, "rb") as handle:
            body = handle.read()
    except OSError as exc:
        raise PilotException(f"cannot read {src}: {exc}", code=ErrorCodes.NOSUCHFILE, state="NO_FILE",
                             kind="missing") from None
    url = (f"{service_endpoint()}/upload/storage/v1/b/{quote(bucket, safe='')}/o?uploadType=media"
           f"&name={quote(name, safe='')}&ifGenerationMatch=0")
    raw = _call(opts, url, body, "POST", fspec.surl, False, get_timeout(len(body)),
                headers={"Content-Type": "application/octet-stream"})
    try:
        stored = json.loads(raw)
    except ValueError:
        stored = {}
    if fspec.checksum.get("adler32"):
        patch = json.dumps({"metadata": {"adler32": fspec.checksum["adler32"]}}).encode()
        _call(opts, f"{service_endpoint()}/storage/v1/{_object_path(bucket, name)}", patch, "PATCH", fspec.surl,
              False, 60, headers={"Content-Type": "application/json"})
    size = int(stored.get("size", -1)) if str(stored.get("size", "")).isdigit() else len(body)
    if size != len(body) or (fspec.filesize and size != int(fspec.filesize)):
        raise PilotException(f"size of {fspec.surl} is {size} B, not {len(body)} B", code=ErrorCodes.STAGEOUTFAILED,
                             state="FS_MISMATCH", kind="checksum")
    fspec.turl = fspec.surl
    fspec.status, fspec.status_code = "transferred", 0
