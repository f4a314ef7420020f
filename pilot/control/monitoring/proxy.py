"""Proxy or token lifetime, every ``proxy_verification_time`` seconds while a payload runs.

Asks the experiment plug-in (``proxy.verify_proxy(limit, x509, proxy_id, test)``, which reads the
X.509 proxy or else the token file); a non-zero code (1163 NOPROXY, 1177 NOVOMSPROXY,
1370 VOMSPROXYABOUTTOEXPIRE, 1373 ...) fails the running jobs and kills their payloads.
Nothing is checked with ``-t`` (no proxy verification). When the very first check finds no
credential at all there is nothing to watch (a pilot run without credentials, e.g. against the dev
server): that is logged once and the check stops; a credential that disappears later is an error.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

from pilot.common.errorcodes import ErrorCodes

from .base import Verdict, setting

if TYPE_CHECKING:
    from pilot.control.context import PilotContext

logger = logging.getLogger(__name__)


class ProxyCheck:
    """A pilot-level check (one credential for all jobs): ``check(ctx) -> Verdict | None``."""

    name = "proxy"

    def __init__(self) -> None:
        self.period = setting("proxy_verification_time", 600.0)
        self.seen_credential = False
        self.disabled = False

    def __call__(self, ctx: PilotContext) -> Optional[Verdict]:
        if self.disabled or not getattr(ctx.args, "verify_proxy", True) or not ctx.executors:
            return None
        try:
            verify = getattr(ctx.user.module("proxy"), "verify_proxy", None)
        except Exception as exc:
            logger.warning("no proxy plug-in: %s", exc)
            verify = None
        if verify is None:
            self.disabled = True
            return None
        code, diag = verify(limit=None, x509=None, proxy_id="pilot", test=False)
        if not code:
            self.seen_credential = True
            return None
        if code == ErrorCodes.NOPROXY and not self.seen_credential:
            logger.info("no proxy or token to watch (%s): the credential check is off for this pilot", diag)
            self.disabled = True
            return None
        logger.error("credential check failed: %d %s", code, diag)
        return Verdict(int(code), diag or ErrorCodes.get_error_message(int(code)))
