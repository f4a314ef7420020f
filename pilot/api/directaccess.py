"""Direct access by size: which inputs the payload reads remotely instead of having them copied.

Pilot 2's rules decide whether a job may read any input remotely at all (the queue's
``direct_access_lan``/``direct_access_wan``, and a job that declares direct I/O: ``transferType=direct``,
``accessmode=direct`` or a user analysis job; see :meth:`pilot.api.data.StageInClient.set_direct_access`).
On top of them, a size threshold (queue data ``direct_access_min_size``, else ``[Pilot]
direct_access_min_size``, bytes; 0: no size rule) keeps smaller inputs copied: only inputs of at least
that size are given to the payload as a TURL (``PoolFileCatalog.xml``). The choice is logged per file
and counted in the job metrics (``nDirectAccessInputs``, ``nCopiedInputs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from pilot.util.config import config

if TYPE_CHECKING:
    from pilot.info.queuedata import QueueData
    from pilot.info.jobdata import JobData

#: job metrics keys: inputs the payload reads remotely, inputs copied to the work dir
DIRECT_METRIC = "nDirectAccessInputs"
COPIED_METRIC = "nCopiedInputs"


def direct_access_min_size(queuedata: Optional[QueueData]) -> int:
    """Bytes from which an input is read directly (queue data, else the config); 0: no size rule."""
    value = (getattr(queuedata, "params", None) or {}).get("direct_access_min_size")
    if value in (None, ""):
        value = config.Pilot.get("direct_access_min_size", 0)
    try:
        return max(0, int(float(value or 0)))
    except (TypeError, ValueError):
        return 0


def count_inputs(job: JobData, queuedata: Optional[QueueData] = None) -> None:
    """Put the number of remotely read and of copied inputs into the job metrics (when any is read remotely
    or a size rule is set)."""
    direct = sum(1 for spec in job.indata if spec.status == "remote_io")
    copied = sum(1 for spec in job.indata if spec.status == "transferred")
    if direct or direct_access_min_size(queuedata):
        job.extra_metrics[DIRECT_METRIC] = direct
        job.extra_metrics[COPIED_METRIC] = copied
