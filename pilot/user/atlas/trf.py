"""ATLAS plug-in: download a user analysis transformation from an allowed place.

A transformation URL is accepted only below one of the allowed base URLs: the built-in list of
Pilot 2, ``[Payload] allowed_trf_urls`` of the configuration and ``$PILOT_ALLOWED_TRF_URLS`` (both
comma-separated). The download goes through the pilot's one HTTP client; the file is written to the
job's work dir and made executable.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from typing import Any, List, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException, TrfDownloadFailure
from pilot.util.config import config

logger = logging.getLogger(__name__)

BUILTIN_BASE_URLS = (
    "http://www.usatlas.bnl.gov",
    "https://www.usatlas.bnl.gov",
    "http://pandaserver.cern.ch",
    "https://pandaserver.cern.ch",
    "http://atlpan.web.cern.ch/atlpan",
    "https://atlpan.web.cern.ch/atlpan",
    "http://classis01.roma1.infn.it",
    "http://atlas-install.roma1.infn.it",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def allowed_base_urls() -> List[str]:
    """Every base URL a transformation may come from."""
    extra = f"{config.Payload.get('allowed_trf_urls', '') or ''},{os.environ.get('PILOT_ALLOWED_TRF_URLS', '')}"
    urls = list(BUILTIN_BASE_URLS) + [u.strip() for u in extra.split(",") if u.strip()]
    return [u.rstrip("/") for u in urls]


def is_allowed(url: str, bases: Optional[List[str]] = None) -> bool:
    """True when ``url`` lies below one of the allowed base URLs (whole path segments only)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.username or parts.password or ".." in parts.path.split("/"):
        return False
    return any(url == base or url.startswith(base + "/") for base in (bases or allowed_base_urls()))


def transform_name(url: str) -> str:
    """The file name of the transformation (last path segment); 1149 when it is not a plain name."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    if not _NAME.match(name):
        raise TrfDownloadFailure(f"transformation URL has no usable file name: {url}")
    return name


def download_transform(url: str, workdir: str, http: Any = None, timeout: float = 120) -> str:
    """Fetch the transformation into ``workdir``; return its file name.

    Raises TrfDownloadFailure (1149) for a URL outside the allowed places or a failed download and
    PilotException 1143 CHMODTRF when it cannot be made executable. An already present file (e.g.
    fetched by a preprocess step) is used as it is.
    """
    name = transform_name(url)
    path = os.path.join(workdir, name)
    if os.path.isfile(path):
        logger.info("transformation %s already in the work dir", name)
        return name
    if not is_allowed(url):
        raise TrfDownloadFailure(f"transformation URL is not below an allowed base URL: {url}")
    if http is None:
        from pilot.util.https import shared_client

        http = shared_client()
    client = http
    try:
        data = client.get(url, timeout=timeout)
    except PilotException as exc:
        raise TrfDownloadFailure(f"cannot download {url}: {exc.diag}") from None
    except OSError as exc:
        raise TrfDownloadFailure(f"cannot download {url}: {exc}") from None
    if not data:
        raise TrfDownloadFailure(f"downloaded transformation {url} is empty")
    with open(path, "wb") as handle:
        handle.write(data)
    try:
        os.chmod(path, 0o755)
    except OSError as exc:
        raise PilotException(f"cannot make {name} executable: {exc}", code=ErrorCodes.CHMODTRF) from None
    logger.info("downloaded transformation %s (%d bytes)", name, len(data))
    return name
