"""Generic experiment plug-in: check the pilot's credential (an X.509 proxy, else an OIDC token)."""

from __future__ import annotations

import logging
import os
from typing import Any, Optional, Tuple

from pilot.common.errorcodes import ErrorCodes
from pilot.util.proxy import default_proxy_path, token_path, verify_token, verify_x509

logger = logging.getLogger(__name__)

#: hours a credential must still be valid when no limit is given
DEFAULT_LIMIT = 1


def verify_proxy(limit: Optional[int] = None, x509: Any = None, proxy_id: str = "pilot",
                 test: bool = False) -> Tuple[int, str]:
    """(code, diag) for the credential that must last ``limit`` hours; (0, '') when it does.

    ``x509`` is the proxy path (default: ``X509_USER_PROXY`` or ``/tmp/x509up_u<uid>``). Without a
    proxy file the token file (``BEARER_TOKEN_FILE`` or ``PANDA_AUTH_DIR``/``PANDA_AUTH_TOKEN``) is
    checked instead. ``test=True`` answers 1370 without looking (to exercise the callers).
    """
    if test:
        return ErrorCodes.VOMSPROXYABOUTTOEXPIRE, "dummy test"
    return verify_credentials(limit, x509, require_voms=False)


def verify_credentials(limit: Optional[int], x509: Any, require_voms: bool) -> Tuple[int, str]:
    """Check the proxy at ``x509`` (or the default one), falling back to the token file."""
    limit = DEFAULT_LIMIT if limit is None else limit
    path = str(x509) if x509 else default_proxy_path()
    if os.path.isfile(path):
        code, diag = verify_x509(path, limit, require_voms=require_voms)
        logger.info("proxy %s: %s", path, diag or f"valid for at least {limit} h")
        return code, diag
    token = token_path()
    if token and os.path.isfile(token):
        code, diag = verify_token(token, limit)
        logger.info("token %s: %s", token, diag or f"valid for at least {limit} h")
        return code, diag
    return ErrorCodes.NOPROXY, f"no proxy ({path}) and no token file found"
