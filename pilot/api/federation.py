"""Federated XRootD fallback at stage-in: an input no listed replica could deliver is read through a federation.

After every copytool and every replica failed for an input (missing, unreachable, timed out, or a copy
whose checksum did not match), the input is copied once more from the XRootD federation redirector
named by the queue data key ``federation_redirector`` (else ``[Pilot] federation_redirector``; empty:
no fallback), at the file's global name as ATLAS builds it (the ``glfn`` of Rucio's metalinks):
``root://<redirector>//atlas/rucio/<scope>:<lfn>`` (the ``/atlas/rucio`` prefix is
``[Pilot] federation_path_prefix``). The copy is made with the ``xrdcp`` copytool and checked like any
other (size and checksum). Its trace report has the federation URL as ``url`` and the protocol
``xrdcp/federation``; the log says which inputs came through the federation, and the job metrics
count them (``nFederatedInputs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.util.config import config

if TYPE_CHECKING:
    from pilot.info.queuedata import QueueData
    from pilot.info.filespec import FileSpec

#: the copytool the federation is read with
FEDERATION_TOOL = "xrdcp"
#: what marks a file copied through the federation (FileSpec.replica_source) and its traces' protocol
SOURCE = "federation"
#: failures the federation cannot help with (the work dir, not the source, is the problem)
NOT_RETRIED = {ErrorCodes.SIZETOOLARGE, ErrorCodes.NOLOCALSPACE}
METRIC = "nFederatedInputs"


def federation_redirector(queuedata: Optional[QueueData]) -> str:
    """The redirector (``host[:port]`` or ``root://host[:port]``), '' when there is no fallback."""
    value = (getattr(queuedata, "params", None) or {}).get("federation_redirector") if queuedata is not None else None
    if value in (None, ""):
        value = config.Pilot.get("federation_redirector", "")
    return str(value or "").strip()


def global_url(redirector: str, scope: str, lfn: str) -> str:
    """``root://<redirector>//atlas/rucio/<scope>:<lfn>``: the file's global name behind the redirector."""
    host = redirector.split("://", 1)[1] if "://" in redirector else redirector
    prefix = "/" + str(config.Pilot.get("federation_path_prefix", "/atlas/rucio") or "").strip("/")
    return f"root://{host.rstrip('/')}/{prefix.rstrip('/')}/{scope}:{lfn}"


def may_retry(fspec: FileSpec) -> bool:
    """Whether a failed input is worth a federation attempt."""
    return (not fspec.is_transferred and fspec.status == "failed" and fspec.transfer_error != "cancelled"
            and fspec.status_code not in NOT_RETRIED and bool(fspec.scope and fspec.lfn))


def fallback(client: Any, files: list, redirector: str, activities: list, options: dict) -> None:
    """Copy ``files`` from the federation with ``client`` (a StageInClient); a file that fails there too
    keeps the error of its replicas."""
    try:
        module = client.plugins.load_copytool(FEDERATION_TOOL)
    except PilotException as exc:
        client.logger.warning("no federation fallback: copytool %s: %s", FEDERATION_TOOL, exc.diag)
        return
    kwargs = client.tool_kwargs(FEDERATION_TOOL, activities, options)
    metrics = getattr(options.get("job"), "extra_metrics", None)
    for fspec in files:
        first = (fspec.status, fspec.status_code, fspec.transfer_error)
        url = global_url(redirector, fspec.scope, fspec.lfn)
        client.logger.warning("input %s failed from its replicas (%s): trying the federation at %s", fspec.lfn,
                              fspec.transfer_error or fspec.status_code, url)
        fspec.replicas, fspec.replica_source = [{"pfn": url, "domain": "wan", "ddmendpoint": ""}], SOURCE
        client.transfer_one(module, FEDERATION_TOOL, fspec, kwargs)
        if fspec.is_transferred:
            client.logger.info("input %s came through the federation (%s)", fspec.lfn, url)
            if isinstance(metrics, dict):
                metrics[METRIC] = int(metrics.get(METRIC, 0)) + 1
        else:
            client.logger.warning("input %s failed through the federation too: %s", fspec.lfn,
                                  fspec.transfer_error)
            fspec.status, fspec.status_code, fspec.transfer_error = first
