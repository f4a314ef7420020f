"""ATLAS plug-in: the pilot's proxy must carry VOMS attributes (unless ``[Pilot] proxy_require_voms`` is false)."""

from __future__ import annotations

from typing import Any, Optional, Tuple

from pilot.common.errorcodes import ErrorCodes
from pilot.user.generic.proxy import verify_credentials
from pilot.util.config import config


def verify_proxy(limit: Optional[int] = None, x509: Any = None, proxy_id: str = "pilot",
                 test: bool = False) -> Tuple[int, str]:
    """(code, diag) for the proxy (or token) that must last ``limit`` hours (default 1); (0, '') when it does.

    Codes: 1163 no credential, 1177 no VOMS attributes, 1370 about to expire, 1373 expired,
    1382 shorter than the 72 h start-up limit. ``test=True`` answers 1370 without looking.
    """
    if test:
        return ErrorCodes.VOMSPROXYABOUTTOEXPIRE, "dummy test"
    require = config.Pilot.get("proxy_require_voms", True)
    return verify_credentials(limit, x509, require_voms=bool(require))
