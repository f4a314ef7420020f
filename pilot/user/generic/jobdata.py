"""Generic experiment plug-in: the special tokens of a job's parameters (compat 4.5).

``filter_job_parameters(job)`` removes the tokens meant for the pilot, not the payload, and records
what they ask for on the job:

=====================================  ====================================================
token in jobPars                       effect
=====================================  ====================================================
``--overwriteQueueData={...}``         ``job.overwrite_queuedata`` (used by :func:`job_queuedata`)
``--overwriteStorageData={...}``       ``job.overwrite_storagedata``
``--overwriteQueuedata={...}``         Pilot 1 spelling: removed, ignored
``<ZIP_MAP>...</ZIP_MAP>``             ``job.zipmap``
``--containerImage <img>`` / ``=img``  ``job.imagename``
``--accessmode=direct|copy``           ``job.accessmode`` and the inputs' ``accessmode``
``--useLocalIO``                       ``job.accessmode = 'copy'`` (kept: it is a payload option too)
=====================================  ====================================================

Every experiment plug-in can reuse these functions (the ATLAS one does).
"""

from __future__ import annotations

import copy
import logging
import re
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from pilot.info.jobinfo import extract_override

if TYPE_CHECKING:
    from pilot.info.queuedata import QueueData
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

_OVERRIDE = r"\s*'?--{name}=\{{.*?\}}'?(?=\s|$)"
_ZIP_MAP = re.compile(r"\s*'?<ZIP_MAP>(.*?)</ZIP_MAP>'?", re.S)
_IMAGE = re.compile(r"\s*'?--containerImage(?:=|\s+)([^\s']+)'?")
_ACCESSMODE = re.compile(r"\s*--accessmode=(direct|copy)\b")
_PROTECT = re.compile(r" (--athenaopts\s+(?:\"[^\"]*\"|'[^']*'|\S+))")


def jobparams_prefiltering(value: str) -> Tuple[Dict[str, str], str]:
    """Take out the parts that later filtering must not touch; return (exclusions, parameters).

    A quoted ``--athenaopts "..."`` is replaced by a placeholder so that environment variables in it
    stay unexpanded by any quoting step.
    """
    exclusions: Dict[str, str] = {}
    for index, match in enumerate(_PROTECT.finditer(value or "")):
        key = f"PILOTEXCLUSION{index}"
        exclusions[key] = match.group(1)
    for key, text in exclusions.items():
        value = value.replace(text, key, 1)
    return exclusions, value


def jobparams_postfiltering(value: str, exclusions: Optional[Dict[str, str]] = None) -> str:
    """Put the parts taken out by :func:`jobparams_prefiltering` back."""
    for key, text in (exclusions or {}).items():
        value = value.replace(key, text)
    return value


def filter_job_parameters(job: JobData) -> str:
    """Remove the pilot's tokens from ``job.jobparams`` and act on them; return the cleaned parameters."""
    exclusions, params = jobparams_prefiltering(job.jobparams or "")
    queue_overrides = extract_override(params, "overwriteQueueData")
    storage_overrides = extract_override(params, "overwriteStorageData")
    for name in ("overwriteQueueData", "overwriteStorageData", "overwriteQueuedata"):
        params = re.sub(_OVERRIDE.format(name=name), "", params)
    if queue_overrides:
        job.overwrite_queuedata = queue_overrides
        logger.info("job %s: queue data overridden by the job: %s", job.jobid, queue_overrides)
    if storage_overrides:
        job.overwrite_storagedata = storage_overrides
    match = _ZIP_MAP.search(params)
    if match:
        job.zipmap = match.group(1)
        params = _ZIP_MAP.sub("", params)
    match = _IMAGE.search(params)
    if match:
        job.imagename = match.group(1)
        params = _IMAGE.sub("", params)
        logger.info("job %s: container image from the job parameters: %s", job.jobid, job.imagename)
    match = _ACCESSMODE.search(params)
    if match:
        set_accessmode(job, match.group(1))
        params = _ACCESSMODE.sub("", params)
    elif "--useLocalIO" in params:
        set_accessmode(job, "copy")
    job.jobparams = jobparams_postfiltering(params.strip(), exclusions)
    return job.jobparams


def set_accessmode(job: JobData, mode: str) -> None:
    """Force direct access or copy-to-scratch for the job's inputs."""
    job.accessmode = mode
    for spec in getattr(job, "indata", []):
        spec.accessmode = mode
    logger.info("job %s: input access mode forced to %s", job.jobid, mode)


def split_platform(job: JobData) -> None:
    """``cmtConfig`` of the form ``platform@alrbplatform``: keep the platform, store the ALRB one."""
    platform = job.platform or ""
    if "@" in platform:
        job.platform, job.alrbuserplatform = platform.split("@", 1)
    elif not hasattr(job, "alrbuserplatform"):
        job.alrbuserplatform = ""
    if job.platform.upper() in ("NULL", "NONE"):
        job.platform = ""


def job_queuedata(job: JobData, queuedata: Optional[QueueData] = None) -> Any:
    """The queue's data as this job sees it: a copy with the job's ``--overwriteQueueData`` applied."""
    if queuedata is None:
        from pilot.info import infosys

        queuedata = infosys.queuedata
    overrides = getattr(job, "overwrite_queuedata", None)
    if queuedata is None or not overrides:
        return queuedata
    patched = copy.deepcopy(queuedata)
    patched.apply_overrides(overrides)
    return patched
