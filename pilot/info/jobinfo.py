"""Queue and storage settings forced by one job (``--overwriteQueueData`` / ``--overwriteStorageData``)."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from pilot.info.basedata import CoercionError, to_dict

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

_OPTION = r"--{name}=(\{{.*?\}})(?=\s|$)"


def extract_override(jobparams: str, name: str) -> dict:
    """The dict given as ``--<name>={...}`` in a job's parameters ({} when absent or unparsable)."""
    match = re.search(_OPTION.format(name=re.escape(name)), jobparams or "")
    if not match:
        return {}
    try:
        return to_dict(match.group(1))
    except CoercionError as exc:
        logger.warning("ignoring --%s: %s", name, exc)
        return {}


class JobInfoProvider:
    """Overrides of queue/storage data carried by one job."""

    def __init__(self, job: JobData) -> None:
        self.job = job

    def overwrite_queuedata(self) -> dict:
        """The job's queue overrides: ``job.overwrite_queuedata`` if set, else parsed from its parameters."""
        value = getattr(self.job, "overwrite_queuedata", None)
        if value:
            return dict(value)
        params = getattr(self.job, "jobparams", "") or getattr(self.job, "definition", {}).get("jobPars", "")
        return extract_override(params, "overwriteQueueData") or extract_override(params, "overwriteQueuedata")

    def overwrite_storagedata(self) -> dict:
        """The job's storage overrides (ddmendpoint -> fields)."""
        value = getattr(self.job, "overwrite_storagedata", None)
        if value:
            return dict(value)
        params = getattr(self.job, "jobparams", "") or getattr(self.job, "definition", {}).get("jobPars", "")
        return extract_override(params, "overwriteStorageData")

    def resolve_queuedata(self, pandaqueue: str, **kwargs: Any) -> dict:
        """``{pandaqueue: overrides}`` from the job."""
        data = self.overwrite_queuedata()
        if data:
            logger.info("queuedata: job overrides %s", data)
        return {pandaqueue: data}

    def resolve_storage_data(self, ddmendpoints: Any = None, **kwargs: Any) -> dict:
        """``{ddmendpoint: overrides}`` from the job."""
        return {k: v for k, v in self.overwrite_storagedata().items() if isinstance(v, dict)}

    def __repr__(self) -> str:
        return f"JobInfoProvider(job={getattr(self.job, 'jobid', '?')})"
