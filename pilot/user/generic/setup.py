"""Generic experiment plug-in: find a job's transformation the ways Pilot 2 and Pilot 3 do.

A transformation given as an ``http(s)://`` URL (a user analysis job) is looked for, in order:

1. in the job's work dir, under its file name (the URL's last path segment), e.g. fetched there by
   a preprocess step (Pilot 2 and 3);
2. in ``$HARVESTER_WORKDIR`` under the same name, copied into the work dir (Pilot 2: under
   Harvester the worker node may have no outbound network);
3. downloaded from the URL, which must lie below one of the allowed base URLs, trying the URL's own
   base first and then the same path below each other allowed base (Pilot 2's fallback order).

The allowed base URLs are the experiment's built-in list (none for ``generic``), ``-g/--baseurls``
(Pilot 3; the workflow passes it in ``$PILOT_BASEURLS``), ``[Payload] allowed_trf_urls`` of the
configuration and ``$PILOT_ALLOWED_TRF_URLS`` (comma-separated). Downloads go through the pilot's
one HTTP client and may not exceed ``[Payload] max_trf_size`` (default 100 MB). The file is made
executable (1143 CHMODTRF when that fails). When no way works the job fails with 1149
TRFDOWNLOADFAILURE and a diagnostic that names every way tried and why it failed.

A transformation that is a plain name (no URL) is also taken from ``$HARVESTER_WORKDIR`` when it is
neither in the work dir nor a command on the ``PATH``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import urllib.parse
from typing import Any, Iterable, List, Optional, Sequence

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException, TrfDownloadFailure
from pilot.util.config import config

logger = logging.getLogger(__name__)

#: default largest transformation accepted (bytes)
DEFAULT_MAX_TRF_SIZE = 100 * 1024 * 1024
#: seconds one download may take
DOWNLOAD_TIMEOUT = 120
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def _split(text: str) -> List[str]:
    return [part.strip().rstrip("/") for part in (text or "").split(",") if part.strip()]


def allowed_base_urls(builtin: Sequence[str] = ()) -> List[str]:
    """Every base URL a transformation may come from (built-in, -g, config, environment), no duplicates."""
    urls = [u.rstrip("/") for u in builtin]
    urls += _split(os.environ.get("PILOT_BASEURLS", ""))
    urls += _split(str(config.Payload.get("allowed_trf_urls", "") or ""))
    urls += _split(os.environ.get("PILOT_ALLOWED_TRF_URLS", ""))
    seen: List[str] = []
    for url in urls:
        if url and url not in seen:
            seen.append(url)
    return seen


def is_url(transformation: str) -> bool:
    return (transformation or "").startswith(("http://", "https://"))


def matching_base(url: str, bases: Iterable[str]) -> str:
    """The allowed base URL that ``url`` lies below (whole path segments), '' for none."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return ""
    if ".." in parts.path.split("/"):
        return ""
    for base in bases:
        if url.startswith(base + "/"):
            return base
    return ""


def transform_name(transformation: str) -> str:
    """The file name of a transformation (a URL's last path segment); 1149 when it is not a plain name."""
    path = urllib.parse.urlsplit(transformation).path if is_url(transformation) else transformation
    name = urllib.parse.unquote(path.rsplit("/", 1)[-1])
    if not _NAME.match(name):
        raise TrfDownloadFailure(f"the transformation has no usable file name: {transformation}")
    return name


def max_trf_size() -> int:
    try:
        return int(config.Payload.get("max_trf_size", DEFAULT_MAX_TRF_SIZE) or DEFAULT_MAX_TRF_SIZE)
    except (TypeError, ValueError):
        return DEFAULT_MAX_TRF_SIZE


def make_executable(path: str) -> None:
    """chmod 0755; 1143 CHMODTRF when it fails."""
    try:
        os.chmod(path, 0o755)
    except OSError as exc:
        raise PilotException(f"cannot make {os.path.basename(path)} executable: {exc}",
                             code=ErrorCodes.CHMODTRF) from None


def _write_new(path: str, data: bytes) -> None:
    """Create ``path`` (never through a link, never over an existing file) with ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def copy_from_harvester(name: str, workdir: str) -> str:
    """Copy ``$HARVESTER_WORKDIR/<name>`` into ``workdir``; '' when done, else why not."""
    harvester = os.environ.get("HARVESTER_WORKDIR", "")
    if not harvester:
        return "HARVESTER_WORKDIR is not set"
    source = os.path.join(harvester, name)
    if not os.path.isfile(source):
        return f"not in HARVESTER_WORKDIR ({source})"
    if os.path.getsize(source) > max_trf_size():
        return f"{source} is larger than [Payload] max_trf_size ({max_trf_size()} B)"
    try:
        with open(source, "rb") as handle:
            _write_new(os.path.join(workdir, name), handle.read())
    except OSError as exc:
        return f"cannot copy {source}: {exc}"
    logger.info("copied transformation %s from HARVESTER_WORKDIR %s", name, harvester)
    return ""


def _client(http: Any) -> Any:
    """The pilot's one HTTP client (the shared instance when the start-up built one)."""
    if http is not None:
        return http
    from pilot.util import https

    shared = getattr(https, "shared_client", None)
    return shared() if shared is not None else https.HttpClient(retries=3)


def download(url: str, path: str, http: Any = None, timeout: float = DOWNLOAD_TIMEOUT) -> str:
    """GET ``url`` into the new file ``path`` within the size cap; '' when done, else why not.

    The client's ``download`` streams to disk (its reply-size cap bounds it); a client without one
    (an older or a test client) is asked with ``get``.
    """
    limit = max_trf_size()
    client = _client(http)
    try:
        if hasattr(client, "download"):
            size = client.download(url, path, timeout=timeout)
        else:
            data = client.get(url, timeout=timeout)
            if len(data) > limit:
                return f"{url}: {len(data)} B is more than [Payload] max_trf_size ({limit} B)"
            _write_new(path, data)
            size = len(data)
    except (PilotException, OSError) as exc:
        return f"{url}: {getattr(exc, 'diag', '') or exc}"
    if size > limit or size == 0:
        os.unlink(path)
        return f"{url}: {size} B is {'empty' if not size else f'more than [Payload] max_trf_size ({limit} B)'}"
    logger.info("downloaded transformation %s from %s (%d B)", os.path.basename(path), url, size)
    return ""


def candidate_urls(url: str, base: str, bases: Sequence[str]) -> List[str]:
    """``url`` itself, then its path below every other allowed base (Pilot 2's fallback order)."""
    tail = url[len(base):]
    return [url] + [other + tail for other in bases if other != base]


def get_analysis_trf(transformation: str, workdir: str, builtin: Sequence[str] = (), http: Any = None) -> str:
    """Make the transformation available as an executable file in ``workdir``; return its file name.

    Raises TrfDownloadFailure (1149) with every way tried when none works, PilotException 1143
    when the file cannot be made executable.
    """
    name = transform_name(transformation)
    path = os.path.join(workdir, name)
    if os.path.isfile(path):
        logger.info("transformation %s is already in the work dir", name)
        make_executable(path)
        return name
    reasons = ["not in the work dir"]
    reason = copy_from_harvester(name, workdir)
    if not reason:
        make_executable(path)
        return name
    reasons.append(reason)
    if is_url(transformation):
        bases = allowed_base_urls(builtin)
        base = matching_base(transformation, bases)
        if not base:
            reasons.append(f"{transformation} is not below an allowed base URL (-g/--baseurls, "
                           f"[Payload] allowed_trf_urls: {', '.join(bases) or 'none'})")
        else:
            for url in candidate_urls(transformation, base, bases):
                reason = download(url, path, http)
                if not reason:
                    make_executable(path)
                    return name
                logger.warning("transformation download failed: %s", reason)
                reasons.append(reason)
    raise TrfDownloadFailure(f"cannot get the transformation {transformation}: {'; '.join(reasons)}")


def local_transformation(transformation: str, workdir: str) -> Optional[str]:
    """For a plain-name transformation: './<name>' when it is (or was copied) in the work dir, else None."""
    if is_url(transformation) or "/" in transformation or not _NAME.match(transformation or ""):
        return None
    if shutil.which(transformation):
        return None
    if os.path.isfile(os.path.join(workdir, transformation)):
        return f"./{transformation}"
    if not copy_from_harvester(transformation, workdir):
        make_executable(os.path.join(workdir, transformation))
        return f"./{transformation}"
    return None
