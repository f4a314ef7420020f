"""ATLAS plug-in: run the payload in a container, through ALRB when the site has it.

* queue runtime ``singularity``/``apptainer`` with ``[Container] setup_type = ALRB`` and ALRB present
  under the CVMFS root: the payload's setup is written to ``my_release_setup.sh`` and the rest of the
  command to ``container_script.sh`` in the work dir (seen as ``/srv`` in the container), and the
  line becomes ``source ${ATLAS_LOCAL_ROOT_BASE}/user/atlasLocalSetup.sh -c $thePlatform
  -s /srv/my_release_setup.sh -r /srv/container_script.sh -e "<container options>"``;
* any other case (e.g. ``bwrap``): the generic Container API wrapper, with the CVMFS root bound in.

The platform (``thePlatform``) is the ALRB platform of ``cmtConfig`` (``x@alrbplatform``), else the
job's image, else its ``cmtConfig``.
"""

from __future__ import annotations

import logging
import os
import shlex
from typing import TYPE_CHECKING, Any, Optional

from pilot.api.container import Bind
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.user.generic import container as generic
from pilot.user.generic.container import (  # noqa: F401  (part of this plug-in's interface)
    create_middleware_container_command, get_middleware_container_script,
)
from pilot.user.generic.jobdata import job_queuedata
from pilot.util.config import config

from .setup import alrb_available, alrb_export, cvmfs_root

if TYPE_CHECKING:
    from pilot.info.queuedata import QueueData
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

ALRB_RUNTIMES = ("singularity", "apptainer")
SRV = "/srv"


def do_use_container(**kwargs: Any) -> bool:
    """True when the payload of ``job=`` must run in a container (queue runtime or a job image)."""
    return generic.do_use_container(**kwargs)


def use_alrb(job: JobData, queuedata: Optional[QueueData] = None) -> bool:
    """True when the container is to be set up by ALRB."""
    return (generic.payload_tool(job, queuedata) in ALRB_RUNTIMES
            and str(config.Container.get("setup_type", "ALRB")).upper() == "ALRB" and alrb_available())


def wrapper(executable: str, **kwargs: Any) -> str:
    """``executable`` run in the job's container (ALRB or the generic runtime wrapper)."""
    job = kwargs.get("job")
    if job is None:
        return executable
    if use_alrb(job, kwargs.get("queuedata")):
        return alrb_wrapper(executable, job, kwargs.get("queuedata"), binds=kwargs.get("binds"))
    binds = list(kwargs.pop("binds", None) or [])
    if os.path.isdir(cvmfs_root()):
        binds.append(Bind(cvmfs_root(), readonly=True, optional=True))
    return generic.wrapper(executable, binds=binds, **kwargs)


def platform(job: JobData) -> str:
    """The ALRB container platform of the job."""
    return (getattr(job, "alrbuserplatform", "") or getattr(job, "imagename", "") or job.platform or "")


def alrb_options(container_options: str) -> str:
    """The ``-e`` option of atlasLocalSetup: the queue's container options, else ``-C``."""
    return f"-e {shlex.quote(container_options or '-C')}"


def _with_binds(options: str, binds: Any) -> str:
    extra = [f"-B {bind.source}:{bind.destination}" for bind in (binds or [])]
    return " ".join([options] + extra)


def _write_script(path: str, text: str, mode: int = 0o755) -> None:
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


def alrb_wrapper(cmd: str, job: JobData, queuedata: Optional[QueueData] = None, binds: Any = None) -> str:
    """The ALRB container line for ``cmd`` (see the module doc). Raises PilotException 1358/1384.

    ``binds`` (e.g. an event-service job's channel socket) are added to the container options as ``-B``.
    """
    queuedata = job_queuedata(job, queuedata)
    pieces = getattr(job, "payload_setup", None) or {}
    release = pieces.get("release", "")
    for part in (pieces.get("alrb", ""), release):
        if part:
            cmd = cmd.replace(part, "")
    thePlatform = platform(job)  # noqa: N806  (the ALRB variable name)
    if not thePlatform:
        raise PilotException("no platform or image for the ALRB container",
                             code=ErrorCodes.QUEUENOTSETUPFORCONTAINERS)
    setup_name = str(config.Container.get("release_setup", "my_release_setup.sh"))
    script_name = str(config.Container.get("container_script", "container_script.sh"))
    release_text = (release or 'echo "INFO: no release setup for this job"') + "\nreturn $?\n"
    image = getattr(job, "imagename", "")
    if image and "unpacked" in image and release and not os.path.exists(os.path.join(image, "release_setup.sh")):
        raise PilotException(f"release setup missing in unpacked container {image}",
                             code=ErrorCodes.MISSINGRELEASEUNPACKED)
    _write_script(os.path.join(job.workdir, setup_name), release_text, 0o644)
    body = f"export TMPDIR={SRV};export GFORTRAN_TMPDIR={SRV};{cmd}".replace(";;", ";")
    _write_script(os.path.join(job.workdir, script_name), body + "\n")
    line = (alrb_export(add_if=True) + f"export thePlatform={shlex.quote(thePlatform)};"
            + f"export PandaID={shlex.quote(str(job.jobid))};"
            + "source ${ATLAS_LOCAL_ROOT_BASE}/user/atlasLocalSetup.sh -c $thePlatform"
            + f" -s {SRV}/{setup_name} -r {SRV}/{script_name} "
            + alrb_options(_with_binds(getattr(queuedata, "container_options", "") or "-C", binds)))
    execargs = (job.containeroptions or {}).get("execArgs")
    if execargs:
        line += f" {execargs}"
    logger.info("job %s: ALRB container command: %s", job.jobid, line)
    return line
