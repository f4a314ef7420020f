"""ATLAS plug-in: the software setup (ALRB and asetup) in front of a payload.

Paths: the CVMFS root is ``$ATLAS_SW_BASE`` (the Pilot 2 variable), else ``[Container] cvmfs_root``
of the configuration, else ``/cvmfs``; ALRB lives at ``<root>/atlas.cern.ch/repo/ATLASLocalRootBase``.
The release setup is added only when those paths exist; without them a site may name its software
directory in the queue's ``appdir`` or ``$VO_ATLAS_SW_DIR`` (it must exist: 1186 otherwise).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
from typing import TYPE_CHECKING, List, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import NoSoftwareDir, PilotException
from pilot.util.config import config
from pilot.util.processes import run_command
from pilot.util.proxy import strip_credentials

if TYPE_CHECKING:
    from pilot.info.queuedata import QueueData
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

#: what asetup prints when the release is not installed
NO_RELEASE_MESSAGE = "No release candidates found"
#: seconds allowed for the setup check before the payload starts
SETUP_CHECK_TIMEOUT = 300


def cvmfs_root() -> str:
    """The root of the CVMFS tree (``$ATLAS_SW_BASE``, ``[Container] cvmfs_root`` or ``/cvmfs``)."""
    return os.environ.get("ATLAS_SW_BASE") or str(config.Container.get("cvmfs_root", "") or "") or "/cvmfs"


def alrb_path() -> str:
    """``<cvmfs>/atlas.cern.ch/repo/ATLASLocalRootBase``."""
    return os.path.join(cvmfs_root(), "atlas.cern.ch", "repo", "ATLASLocalRootBase")


def alrb_available() -> bool:
    """True when ALRB's ``user/atlasLocalSetup.sh`` exists."""
    return os.path.isfile(os.path.join(alrb_path(), "user", "atlasLocalSetup.sh"))


def alrb_export(add_if: bool = False) -> str:
    """``export ATLAS_LOCAL_ROOT_BASE=...;`` ('' without ALRB); ``add_if`` keeps a value already set."""
    if not alrb_available():
        return ""
    cmd = f"export ATLAS_LOCAL_ROOT_BASE={shlex.quote(alrb_path())};"
    return f'if [ -z "$ATLAS_LOCAL_ROOT_BASE" ]; then {cmd} fi;' if add_if else cmd


def is_standard_atlas_job(release: str) -> bool:
    """A release of the form ``Atlas-<version>``."""
    return (release or "").startswith("Atlas-")


def has_release(job: JobData) -> bool:
    """The job names a software release."""
    return bool(job.swrelease) and job.swrelease.upper() not in ("NULL", "NONE")


def should_prepare_setup(job: JobData) -> bool:
    """False when the job parameters carry their own asetup (noExecStrCnv) or a stand-alone image is used."""
    if getattr(job, "imagename", ""):
        return False
    return not (job.noexecstrcnv and "asetup.sh" in (job.jobparams or ""))


def asetup_options(release: str, homepackage: str) -> str:
    """asetup's options from swRelease and homepackage, e.g. ``AtlasOffline,21.0.15,notest``."""
    release = re.sub(r"^Atlas-", "", release or "")
    homepackage = "" if (homepackage or "").upper() == "NULL" else (homepackage or "")
    options: List[str] = []
    if "AnalysisTransforms" in homepackage:
        package = re.sub(r"^AnalysisTransforms-*", "", homepackage)
        if (not package or not re.match(r"^\d+\.\d+\.\d+$", release)) and release:
            options.append(release)
        if package:
            options += package.split("_")
    else:
        options += [part for part in homepackage.split("/") if part]
        if release and release not in homepackage and release not in options:
            options.append(release)
    options.append("notest")
    if "ATLAS_FAST_ASETUP" in os.environ:
        options.append("fast")
    return ",".join(options)


def software_dir(queuedata: Optional[QueueData] = None) -> str:
    """The site's software directory (queue ``appdir``, else ``$VO_ATLAS_SW_DIR``); '' when unset."""
    appdir = getattr(queuedata, "appdir", "") if queuedata is not None else ""
    return appdir or os.environ.get("VO_ATLAS_SW_DIR", "")


def alrb_setup() -> str:
    """``export ATLAS_LOCAL_ROOT_BASE=...;source ${ATLAS_LOCAL_ROOT_BASE}/user/atlasLocalSetup.sh --quiet;``."""
    export = alrb_export()
    return f"{export}source ${{ATLAS_LOCAL_ROOT_BASE}}/user/atlasLocalSetup.sh --quiet;" if export else ""


def release_setup(job: JobData, queuedata: Optional[QueueData] = None) -> str:
    """``source <asetup.sh> <options> --platform <p> --makeflags='$MAKEFLAGS'``; '' when not needed.

    Raises NoSoftwareDir (1186) when the only software directory named does not exist.
    """
    if not has_release(job) or not should_prepare_setup(job):
        return ""
    if alrb_available():
        script = "$AtlasSetup/scripts/asetup.sh"
    else:
        appdir = software_dir(queuedata)
        if not appdir:
            logger.warning("job %s: no ALRB under %s and no software dir: release %s is not set up", job.jobid,
                           cvmfs_root(), job.swrelease)
            return ""
        if not os.path.isdir(appdir):
            raise NoSoftwareDir(f"software directory does not exist: {appdir}")
        script = shlex.quote(os.path.join(appdir, "scripts", "asetup.sh"))
    options = asetup_options(job.swrelease, job.homepackage)
    line = f"source {script} {options}"
    if job.platform:
        line += f" --platform {shlex.quote(job.platform)}"
    return line + " --makeflags='$MAKEFLAGS';"


def setup_command(job: JobData, queuedata: Optional[QueueData] = None) -> str:
    """The full setup in front of the transformation: ALRB (when present) then the release."""
    release = release_setup(job, queuedata)
    if not release:
        return ""
    return (alrb_setup() if alrb_available() else "") + release


def verify_setup(setup: str, workdir: str, timeout: float = SETUP_CHECK_TIMEOUT) -> None:
    """Run the setup once before the payload; raise 1244 NORELEASEFOUND when the release is missing."""
    if not setup:
        return
    env = strip_credentials(dict(os.environ))
    env.setdefault("MAKEFLAGS", "-j1 QUICK=1 -l1")
    result = run_command(["/bin/bash", "-c", setup], timeout=timeout, cwd=workdir or None, env=env)
    output = f"{result.stdout}\n{result.stderr}"
    if result.exit_code != 0 and NO_RELEASE_MESSAGE in output:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        raise PilotException(f"release setup failed: {' | '.join(lines[-3:])[:400]}",
                             code=ErrorCodes.NORELEASEFOUND)
    if result.exit_code != 0:
        logger.warning("setup check ended with exit code %d: %s", result.exit_code, output.strip()[-300:])


def makeflags(corecount: int) -> str:
    """``export MAKEFLAGS='-j<n> QUICK=1 -l1';`` (limits parallel make to the job's cores)."""
    cores = corecount if isinstance(corecount, int) and corecount >= 1 else 1
    return f"export MAKEFLAGS='-j{cores} QUICK=1 -l1';"


def input_dataset(job: JobData) -> str:
    """The first input dataset that is neither a DBRelease nor a library (``INDS``)."""
    for spec in getattr(job, "indata", []):
        if spec.dataset and "DBRelease" not in spec.dataset and ".lib." not in spec.dataset:
            return spec.dataset
    return ""


def payload_environment_exports(job: JobData, site: str = "") -> str:
    """``export`` statements for the variables ATLAS payloads read (PandaID, FRONTIER_ID, RUCIO_APPID...)."""
    values = [
        ("PANDA_RESOURCE", site),
        ("FRONTIER_ID", f"[{job.taskid}_{job.jobid}]"),
        ("PandaID", job.jobid),
        ("PanDA_TaskID", job.taskid),
        ("PanDA_AttemptNr", str(job.attemptnr)),
        ("INDS", input_dataset(job) or "unknown"),
        ("RUCIO_ACCOUNT", os.environ.get("RUCIO_ACCOUNT", "pilot")),
    ]
    if job.processingtype:
        values.append(("RUCIO_APPID", job.processingtype))
    if job.is_analysis:
        values += [("ROOT_TTREECACHE_SIZE", "1"), ("ROOTCORE_NCPUS", str(job.corecount or 1))]
    text = "".join(f"export {key}={shlex.quote(str(value))};" for key, value in values)
    return text + "export CMSSW_VERSION=$FRONTIER_ID;"
