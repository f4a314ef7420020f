"""Checks before every getJob: a pilot that cannot run a job does not ask for one.

Pilot 2 (``job.proceed_with_getjob``) checked the proxy and the local free space before each job
request, so that a job was never taken only to be failed seconds later. The checks here, in order:

1. **Experiment plug-in** (``--pilot-user``): every module of the plug-in contract loads and has
   its required functions. An unknown or broken plug-in stops the pilot with the loader's code
   (1300 NOTIMPLEMENTED for a missing module or function, 1342 when a module's own import fails).
2. **Credential lifetime** (skipped with ``-t``): the plug-in's ``proxy.verify_proxy`` with the
   getJob limit in hours (``[Pilot] getjob_proxy_limit``; default: 48 h for ``atlas`` as in Pilot 2's
   ATLAS plug-in, 1 h otherwise). It reads the X.509 proxy, else the token file. A credential that
   is too short or expired stops the pilot with 1177 NOVOMSPROXY (the code Pilot 2 gave a proxy whose
   lifetime is below the limit); no credential at all is 1163 NOPROXY. Without any credential the
   generic plug-in proceeds (Pilot 2's generic plug-in checked nothing; the dev server needs none)
   unless ``[Pilot] getjob_require_credential`` is true; ``atlas`` always requires one.
3. **Free space** in the main work dir above ``[Pilot] free_space_limit`` (default 2 GB), else
   1098 NOLOCALSPACE (Pilot 2's ``check_local_space``).

Each failure is one ERROR line ``cannot ask for a job: ...`` and becomes the pilot's exit code.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.control.monitoring.base import parse_size
from pilot.util.config import config

if TYPE_CHECKING:
    from pilot.control.context import PilotContext, PluginLoader

logger = logging.getLogger(__name__)

#: hours the credential must still last when a job is requested (Pilot 2: 48 h in the ATLAS plug-in)
GETJOB_PROXY_LIMITS = {"atlas": 48}
DEFAULT_GETJOB_PROXY_LIMIT = 1
#: experiments that never ask for a job without a credential
CREDENTIAL_REQUIRED = ("atlas",)
#: the modules every experiment plug-in must provide (compat §9)
PLUGIN_MODULES = ("common", "container", "diagnose", "jobdata", "jobmetrics", "loopingjob_definitions",
                  "memory", "monitoring", "proxy", "cpu", "metadata", "utilities")
#: codes that mean "the credential is there but will not last": reported as Pilot 2's 1177
_TOO_SHORT = (ErrorCodes.VOMSPROXYABOUTTOEXPIRE, ErrorCodes.CERTIFICATEHASEXPIRED, ErrorCodes.PROXYTOOSHORT,
              ErrorCodes.NOVOMSPROXY)


@dataclass
class Refusal:
    """Why this pilot must not ask for a job."""

    code: int
    diag: str


def _config_value(key: str, default: Any) -> Any:
    value = config.Pilot.get(key, None)
    return default if value is None or value == "" else value


def check_plugin(user: PluginLoader) -> Optional[Refusal]:
    """Every module of the experiment plug-in loads (``user`` is the workflow's plug-in loader)."""
    for name in PLUGIN_MODULES:
        try:
            user.module(name)
        except PilotException as exc:
            return Refusal(exc.get_error_code(), f"experiment plug-in '{user.experiment}': {exc.get_detail()}")
    return None


def getjob_proxy_limit(experiment: str) -> float:
    """Hours the credential must still last when a job is requested."""
    default = GETJOB_PROXY_LIMITS.get(experiment, DEFAULT_GETJOB_PROXY_LIMIT)
    try:
        return float(_config_value("getjob_proxy_limit", default))
    except (TypeError, ValueError):
        logger.warning("bad [Pilot] getjob_proxy_limit; using %s h", default)
        return float(default)


def credential_required(experiment: str) -> bool:
    value = _config_value("getjob_require_credential", experiment in CREDENTIAL_REQUIRED)
    return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "yes", "1", "y", "t")


def check_credential(user: PluginLoader, args: Any) -> Optional[Refusal]:
    """The pilot's proxy (or token) lasts the getJob limit; None when it does or is not checked."""
    if not getattr(args, "verify_proxy", True):
        return None
    experiment = user.experiment
    limit = getjob_proxy_limit(experiment)
    verify = user.module("proxy").verify_proxy
    code, diag = verify(limit=limit, x509=None, proxy_id="pilot", test=False)
    if not code:
        logger.info("credential check before getJob: valid for at least %s h", limit)
        return None
    if code == ErrorCodes.NOPROXY:
        if not credential_required(experiment):
            logger.info("credential check before getJob: no proxy or token (%s); not required for '%s'",
                        diag, experiment)
            return None
        return Refusal(ErrorCodes.NOPROXY, diag)
    if code in _TOO_SHORT:
        return Refusal(ErrorCodes.NOVOMSPROXY, f"{diag} (need {limit:g} h to take a job)")
    return Refusal(int(code), diag)


def free_space_limit() -> int:
    """``[Pilot] free_space_limit`` in bytes (default 2 GB)."""
    try:
        return parse_size(_config_value("free_space_limit", "2 GB"))
    except ValueError:
        logger.warning("bad [Pilot] free_space_limit; using 2 GB")
        return 2 * 1024 ** 3


def check_free_space(path: str) -> Optional[Refusal]:
    """More than ``free_space_limit`` is free where jobs run."""
    limit = free_space_limit()
    try:
        free = shutil.disk_usage(path).free
    except OSError as exc:
        return Refusal(ErrorCodes.NOLOCALSPACE, f"cannot read the free space of {path}: {exc}")
    if free <= limit:
        return Refusal(ErrorCodes.NOLOCALSPACE,
                       f"too little space left on local disk to run a job: {free} B in {path} "
                       f"(need more than {limit} B, [Pilot] free_space_limit)")
    return None


def refusal(ctx: PilotContext) -> Optional[Refusal]:
    """The first reason this pilot must not request a job, else None."""
    for check in (lambda: check_plugin(ctx.user), lambda: check_credential(ctx.user, ctx.args),
                  lambda: check_free_space(ctx.mainworkdir)):
        found = check()
        if found is not None:
            logger.error("cannot ask for a job: %s (error %d)", found.diag, found.code)
            return found
    return None
