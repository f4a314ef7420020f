"""The generic HPC resource: Harvester's shared-file layout on any Linux cluster.

Harvester (HPC one-shot / multi-job workers) writes into the worker's access point
(``--harvester-workdir``):

- ``worker_pandaids.json``: the list of PandaIDs of the worker; MPI rank *r* runs the *r*-th one;
- ``<PandaID>/HPCJobs.json``: that job's definition (``{PandaID: getJob fields}``), or one
  ``HPCJobs.json`` in the access point holding every job (then rank *r* takes the *r*-th PandaID).

The job runs in ``<access point>/<PandaID>/`` (created when missing); with ``[HPC] use_scratch`` true
and ``[HPC] scratch`` on the node, the inputs are copied to ``<scratch>/<PandaID>/`` first and the
outputs copied back afterwards.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import FileHandlingFailure, PilotException
from pilot.info.jobdata import JobData
from pilot.util.config import config
from pilot.util.filehandling import read_json, write_json_atomic
from pilot.util.harvester import FileNames, clean_job_report, parse_job_definitions, read_pandaids

logger = logging.getLogger(__name__)


def _definitions(path: str) -> dict:
    """{PandaID: definition} of a job file ({} when absent)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return {}
    found = {}
    for definition in parse_job_definitions(text):
        pandaid = str(definition.get("PandaID") or definition.get("pandaID") or "")
        if pandaid:
            found[pandaid] = definition
    return found


def find_definition(communication_point: str, rank: int = 0) -> tuple:
    """(PandaID, definition) of the job of ``rank``; (None, None) when the worker has none for it."""
    names = FileNames.from_config()
    pandaids = read_pandaids(os.path.join(communication_point, names.jobs_list))
    shared = _definitions(os.path.join(communication_point, names.pandajob_file))
    if not pandaids:
        pandaids = sorted(shared, key=lambda p: (len(p), p))
    if rank >= len(pandaids):
        logger.info("rank %d: the worker lists %d job(s): no job for this rank", rank, len(pandaids))
        return None, None
    pandaid = pandaids[rank]
    own = _definitions(os.path.join(communication_point, pandaid, names.pandajob_file))
    definition = own.get(pandaid) or shared.get(pandaid)
    if definition is None and len(own) == 1:
        definition = next(iter(own.values()))
    if definition is None:
        raise PilotException(f"no definition of job {pandaid} for rank {rank} in {communication_point}",
                             code=ErrorCodes.NOTDEFINED)
    definition.setdefault("PandaID", pandaid)
    return pandaid, definition


def get_job(communication_point: str, rank: int = 0) -> tuple:
    """(JobData or None, rank): the job this rank runs (see the module documentation)."""
    pandaid, definition = find_definition(communication_point, rank)
    if definition is None:
        return None, rank
    job = JobData.from_definition(definition)
    logger.info("rank %d runs job %s", rank, job.jobid)
    return job, rank


def set_job_workdir(job: JobData, path: str) -> str:
    """``<path>/<PandaID>`` (created when missing): the job's directory on the shared file system."""
    work_dir = os.path.join(os.path.abspath(path), str(job.jobid))
    os.makedirs(work_dir, exist_ok=True)
    return work_dir


def get_setup(job: Optional[JobData] = None) -> list:
    """Shell lines to run before the payload (none on a generic resource)."""
    return []


def set_scratch_workdir(job: JobData, work_dir: str, args: Any = None) -> str:
    """Where the payload runs: ``work_dir``, or a scratch copy when ``[HPC] use_scratch`` is true."""
    scratch = str(config.get("HPC", "scratch", "") or "")
    if not config.get("HPC", "use_scratch", False) or not scratch or not os.path.isdir(scratch):
        return work_dir
    job_scratch = os.path.join(scratch, str(job.jobid))
    try:
        os.makedirs(job_scratch, exist_ok=True)
        for spec in getattr(job, "indata", []):
            source = os.path.join(work_dir, spec.lfn)
            if os.path.isfile(source):
                shutil.copy2(source, os.path.join(job_scratch, spec.lfn))
    except OSError as exc:
        raise FileHandlingFailure(f"cannot prepare the scratch directory {job_scratch}: {exc}") from None
    logger.info("job %s runs in the scratch directory %s", job.jobid, job_scratch)
    return job_scratch


def command_fix(command: str, job_scratch_dir: str) -> str:
    """The payload command, unchanged on a generic resource."""
    return command


def process_jobreport(payload_report_file: str, job_scratch_path: str, job_communication_point: str) -> None:
    """Write the job report, each executor's logfileReport emptied, where Harvester reads it."""
    source = os.path.join(job_scratch_path, payload_report_file)
    target = os.path.join(job_communication_point, payload_report_file)
    try:
        report = read_json(source)
    except (OSError, ValueError) as exc:
        logger.warning("cannot read the job report %s: %s", source, exc)
        return
    try:
        write_json_atomic(target, clean_job_report(report))
    except OSError as exc:
        raise FileHandlingFailure(f"cannot write the job report to {target}: {exc}") from None


def postprocess_workdir(workdir: str) -> None:
    """Nothing to clean on a generic resource."""


def copy_back(files: list, job_scratch_dir: str, work_dir: str) -> Optional[str]:
    """Copy ``files`` (names) from the scratch directory to the work dir; the first error text or None."""
    if os.path.abspath(job_scratch_dir) == os.path.abspath(work_dir):
        return None
    for name in files:
        source = os.path.join(job_scratch_dir, name)
        if os.path.isfile(source):
            try:
                shutil.copy2(source, os.path.join(work_dir, name))
            except OSError as exc:
                return f"cannot copy {name} to {work_dir}: {exc}"
    return None
