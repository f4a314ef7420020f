"""Pilot 2's set-up names of ``pilot.util.https``: ``https_setup``, ``cacert``, ``capath``,
``cacert_default_location`` (imported from there by outside code and the upstream tests).

``cacert(args)`` and ``capath(args)`` pick the first existing candidate as Pilot 2 did:
``--cacert``, ``$X509_USER_PROXY``, ``/tmp/x509up_u<uid>``; ``--capath``, ``$X509_CERT_DIR``,
``/etc/grid-security/certificates``; None when there is none. ``https_setup(args, version)`` makes
the pilot's one HTTP client from ``args`` (as the pilot's start-up does) and returns it; Pilot 2
returned nothing and kept module-level state, which callers never read.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Optional

logger = logging.getLogger(__name__)


def _first(test: Callable[[str], bool], *candidates: Optional[str]) -> Optional[str]:
    for candidate in candidates:
        if candidate and test(candidate):
            return candidate
    return None


def cacert_default_location() -> Optional[str]:
    """``/tmp/x509up_u<uid>`` (None where there is no uid)."""
    getuid = getattr(os, "getuid", None)
    return f"/tmp/x509up_u{getuid()}" if getuid is not None else None


def cacert(args: Any = None) -> Optional[str]:
    """The client certificate (proxy): ``--cacert``, ``$X509_USER_PROXY``, the default location; a file."""
    return _first(os.path.isfile, getattr(args, "cacert", None) if args else None,
                  os.environ.get("X509_USER_PROXY"), cacert_default_location())


def capath(args: Any = None) -> Optional[str]:
    """The CA directory: ``--capath``, ``$X509_CERT_DIR``, ``/etc/grid-security/certificates``; a directory."""
    return _first(os.path.isdir, getattr(args, "capath", None) if args else None,
                  os.environ.get("X509_CERT_DIR"), "/etc/grid-security/certificates")


def https_setup(args: Any = None, version: Optional[str] = None) -> Any:
    """Build the pilot's one HTTP client from ``args`` and make it the shared one; return it.

    ``version`` is accepted for Pilot 2's call shape; the User-Agent always carries the pilot's version.
    """
    from pilot.util import https

    client = https.client_from_args(args) if args is not None else https.client_from_config(
        cacert=cacert(), capath=capath())
    https.set_shared_client(client)
    logger.debug("HTTPS set up: cacert=%s capath=%s", client.cacert, client.capath)
    return client
