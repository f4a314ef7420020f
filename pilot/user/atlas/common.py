"""ATLAS experiment plug-in: job checks, the payload command and the utilities around the payload.

Production job (transformation is a name, e.g. ``Sim_tf.py``)::

    export PandaID=...;...;export ATLAS_LOCAL_ROOT_BASE=<cvmfs>/atlas.cern.ch/repo/ATLASLocalRootBase;
    source ${ATLAS_LOCAL_ROOT_BASE}/user/atlasLocalSetup.sh --quiet;
    source $AtlasSetup/scripts/asetup.sh <homepackage parts>,<release>,notest --platform <cmtConfig> ...;
    <transformation> <jobPars>

User analysis job (transformation is a URL): the transformation is downloaded into the work dir from
an allowed base URL and run as ``./<name> <jobPars>`` (after the release setup when the job names
a release). Inputs are listed in ``PoolFileCatalog.xml``. Before the payload runs outside a
container, the setup is run once: a missing release fails the job with 1244.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import signal
from typing import TYPE_CHECKING, Any, List, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.user.generic import common as generic
from pilot.user.generic.common import (  # noqa: F401  (part of this plug-in's interface)
    UTILITY_AFTER_PAYLOAD_FINISHED, UTILITY_AFTER_PAYLOAD_FINISHED2, UTILITY_AFTER_PAYLOAD_STARTED,
    UTILITY_AFTER_PAYLOAD_STARTED2, UTILITY_BEFORE_PAYLOAD, UTILITY_BEFORE_STAGEIN, UTILITY_WITH_PAYLOAD,
    UTILITY_WITH_STAGEIN, get_metadata, post_prestagein_utility_command, preprocess_debug_command,
    process_debug_command, process_utility, update_output_for_hpo, update_server,
)
from pilot.user.generic.jobdata import job_queuedata
from pilot.user.generic.setup import get_analysis_trf
from pilot.util.config import config

from . import setup
from .dbrelease import get_dbrelease_version, use_local_dbrelease
from .jobreport import parse_jobreport_data  # noqa: F401  (HPC workflows call it through this module)
from .metadata import create_input_file_metadata
from .trf import BUILTIN_BASE_URLS

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

MEMORY_MONITOR = "MemoryMonitor"
MEMORY_MONITOR_OUTPUT = "memory_monitor_output.txt"
MEMORY_MONITOR_SUMMARY = "memory_monitor_summary.json"

#: files and directories removed from the work dir before the log tarball is made
REDUNDANT_PATTERNS = (
    "AtlasProduction*", "buildJob*", "DBRelease*", "EvgenJobOptions", "fort.*", "geant4", "geomDB",
    "geomDB_sqlite", "home", "python", "runAthena*", "share", "sources.*", "sqlite*", "sw", "tcf_*",
    "triggerDB", "trusted.caches", "workdir", "*.data*", "*.events", "*.py", "*.pyc", "*.root*", "tmp*",
    "*.tmp", "*.TMP", "scratch", "*.writing", "pwg*", "pwhg*", "*PROC*", "madevent", "*proxy", "ckpt*",
    "*runcontainer*", "*job.log.tgz", "runGen-*", "singularity_cachedir", "singularity", "cores", "pilot",
    "core", "core.*",
)
#: parts of names that are never removed
KEEP_MARKERS = ("runargs", "runwrapper", "jobReport", "log.")


def sanity_check() -> int:
    """Checks before the first job: 0 when all is well."""
    return 0


def validate(job: JobData) -> bool:
    """Filter jobPars, use a local DBRelease when one is installed, check a named image exists.

    Raises PilotException: 1339 DBRELEASEFAILURE, 1360 IMAGENOTFOUND.
    """
    generic.validate(job)
    if "DBRelease" in (job.jobparams or "") and get_dbrelease_version(job.jobparams):
        use_local_dbrelease(job)
    image = getattr(job, "imagename", "")
    if image.startswith("/") and not os.path.exists(image):
        raise PilotException(f"container image does not exist: {image}", code=ErrorCodes.IMAGENOTFOUND)
    return True


def verify_job(job: JobData) -> bool:
    """Core count settings the payload reads (``ATHENA_PROC_NUMBER`` set by a wrapper wins)."""
    if not os.environ.get("ATHENA_PROC_NUMBER"):
        job.extra_metrics.setdefault("coreCountSource", "job")
    return True


def _site_name(job: JobData) -> str:
    queuedata = job_queuedata(job)
    return getattr(queuedata, "resource", "") or os.environ.get("PILOT_SITENAME", "")


def input_catalog(job: JobData) -> dict:
    """``{guid: pfn}`` of the job's inputs (the TURL for direct access, else the local name)."""
    catalog = {}
    for spec in job.indata:
        if not spec.guid:
            continue
        catalog[spec.guid] = spec.turl if spec.status == "remote_io" and spec.turl else spec.lfn
    return catalog


def analysis_run_command(job: JobData, trf_name: str) -> str:
    """``./<trf> <jobPars>`` plus the direct-access switches when inputs are read remotely."""
    cmd = f"./{trf_name} {job.jobparams}".strip()
    if any(spec.status == "remote_io" for spec in job.indata):
        for switch in ("--usePFCTurl", "--directIn"):
            if switch not in cmd:
                cmd += f" {switch}"
    return cmd


def get_payload_command(job: JobData) -> str:
    """The payload's shell line (see the module doc). Raises PilotException with the failure's code."""
    if not job.transformation:
        raise PilotException("no transformation in the job definition", code=ErrorCodes.NOTDEFINED)
    queuedata = job_queuedata(job)
    release = setup.release_setup(job, queuedata)
    alrb = setup.alrb_setup() if release and setup.alrb_available() else ""
    job.payload_setup = {"alrb": alrb, "release": release}
    from .container import do_use_container  # the container module imports this one's helpers

    if release and not do_use_container(job=job):
        setup.verify_setup(alrb + release, job.workdir)
    catalog = input_catalog(job)
    if catalog:
        create_input_file_metadata(catalog, job.workdir)
    if job.is_analysis:
        trf_name = get_analysis_trf(job.transformation, job.workdir, builtin=BUILTIN_BASE_URLS)
        body = setup.makeflags(job.corecount) + (analysis_run_command(job, trf_name) if setup.should_prepare_setup(
            job) or not release else job.jobparams)
    else:
        local_db = os.environ.get("PILOT_DB_LOCAL_SETUP_CMD", "")
        trf = f"{job.transformation} {job.jobparams}" if setup.should_prepare_setup(job) else job.jobparams
        body = (f"{local_db};" if local_db else "") + trf.strip()
    cmd = setup.payload_environment_exports(job, _site_name(job)) + alrb + release + body
    logger.info("job %s: payload command: %s", job.jobid, cmd)
    return cmd


def remove_redundant_files(workdir: str, outputfiles: Optional[list] = None, islooping: bool = False,
                           debugmode: bool = False) -> None:
    """Remove what must not go into the log tarball (never the outputs, job reports or log files)."""
    workdir = os.path.abspath(workdir)
    keep = {os.path.join(workdir, name) for name in (outputfiles or [])}
    for path in _redundant_paths(workdir):
        if path in keep or any(marker in os.path.basename(path) for marker in KEEP_MARKERS):
            continue
        if islooping and os.path.basename(path) == "workDir":
            continue
        _remove(path)
    if not islooping:
        _remove(os.path.join(workdir, "workDir"))
    for root, _dirs, files in os.walk(workdir):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path) and not os.path.exists(path):
                _remove(path)


def _redundant_paths(workdir: str) -> List[str]:
    found: List[str] = []
    for pattern in REDUNDANT_PATTERNS:
        for path in glob.glob(os.path.join(glob.escape(workdir), pattern)):
            if path not in found:
                found.append(path)
    return found


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
    except OSError as exc:
        logger.warning("cannot remove %s: %s", path, exc)


def _downloaded(utility: dict, job: JobData) -> dict:
    """A utility whose command is a URL: download it like a transformation and run it from the work dir."""
    if utility and utility["command"].startswith(("http://", "https://")):
        try:
            utility["command"] = "./" + get_analysis_trf(utility["command"], job.workdir, builtin=BUILTIN_BASE_URLS)
        except PilotException as exc:
            logger.warning("job %s: cannot download %s command: %s", job.jobid, utility["label"], exc.diag)
            return {}
    return utility


def get_utility_commands(order: Optional[int] = None, job: Optional[JobData] = None) -> dict:
    """The utility to run at ``order`` (compat 9): {command, args, label, ignore_failure} or {}.

    1: the job's preprocess; 3: the memory monitor; 4: the job's coprocess; 6: the job's postprocess.
    """
    if order == UTILITY_AFTER_PAYLOAD_STARTED:
        name = str(getattr(config.Pilot, "utility_after_payload_started", "") or "")
        return {"command": name, "args": "", "label": name, "ignore_failure": True} if name else {}
    if job is None:
        return {}
    if order == UTILITY_BEFORE_PAYLOAD:
        return _downloaded(process_utility(job.preprocess, "preprocess"), job)
    if order == UTILITY_AFTER_PAYLOAD_STARTED2:
        return _downloaded(process_utility(job.coprocess, "coprocess", ignore_failure=True), job)
    if order == UTILITY_AFTER_PAYLOAD_FINISHED2:
        return _downloaded(process_utility(job.postprocess, "postprocess"), job)
    return {}


def get_utility_command_setup(name: str, job: Optional[JobData] = None, setup: Optional[str] = None,
                              **kwargs: Any) -> str:
    """The shell line of a utility: prmon for the memory monitor, ``<command> <args>`` for pre/co/post."""
    if name == MEMORY_MONITOR:
        if job is None or not job.pid:
            return ""
        return (f"prmon --pid {int(job.pid)} --filename {MEMORY_MONITOR_OUTPUT} "
                f"--json-summary {MEMORY_MONITOR_SUMMARY} --interval 60")
    return generic.get_utility_command_setup(name, job, setup)


def get_utility_command_kill_signal(name: str) -> int:
    """SIGUSR1 for the memory monitor (it then writes its summary), SIGTERM for the rest."""
    return signal.SIGUSR1 if name == MEMORY_MONITOR else signal.SIGTERM


def get_utility_command_output_filename(name: str, selector: Any = None) -> str:
    """The memory monitor's summary (``selector`` true) or time series file."""
    if name == MEMORY_MONITOR:
        return MEMORY_MONITOR_SUMMARY if selector else MEMORY_MONITOR_OUTPUT
    return ""


def post_utility_command_action(name: str, job: JobData) -> None:
    """After the memory monitor: copy its summary into the job's memory fields."""
    if name == MEMORY_MONITOR:
        from .utilities import get_memory_monitor_info

        job.memory_summary.update(get_memory_monitor_info(job.workdir, MEMORY_MONITOR_SUMMARY))


def update_stagein(job: JobData) -> None:
    """Skip the DBRelease input when the local tarball replaced it."""
    for spec in job.indata:
        if spec.lfn.startswith("DBRelease-") and os.path.isfile(os.path.join(job.workdir, spec.lfn)):
            spec.status = "no_transfer"


def allow_timefloor(submitmode: str) -> bool:
    """No further jobs in Harvester PUSH mode."""
    return (submitmode or "").lower() != "push"
