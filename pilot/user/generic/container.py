"""Generic experiment plug-in: run the payload (and middleware) in the queue's container runtime.

The runtime follows the queue's ``container_type`` (see :mod:`pilot.api.container`); a job that names
an image (``--containerImage``, ``containerOptions``, ``container_name``) on a queue without a
runtime uses apptainer. The pilot's own credential files are masked inside the container.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, List, Optional

from pilot.api.container import (
    Bind, ContainerSpec, get_runtime, parse_container_options, parse_container_type, payload_container_tool,
    select_image,
)
from pilot.util.config import config
from pilot.util.proxy import payload_proxy_path, pilot_credential_paths

from .jobdata import job_queuedata

if TYPE_CHECKING:
    from pilot.info.queuedata import QueueData
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

#: runtime used when a job names an image but the queue has no container_type
DEFAULT_RUNTIME = "apptainer"


def payload_tool(job: JobData, queuedata: Optional[QueueData] = None) -> str:
    """The runtime name for the job's payload ('' = no container)."""
    queuedata = job_queuedata(job, queuedata)
    tool = payload_container_tool(queuedata, job) if queuedata is not None else ""
    if not tool and select_image(job):
        tool = DEFAULT_RUNTIME
    return tool


def do_use_container(**kwargs: Any) -> bool:
    """True when the payload of ``job=`` must run in a container."""
    job = kwargs.get("job")
    if job is None:
        return False
    return bool(payload_tool(job, kwargs.get("queuedata")))


def credential_masks(job: Optional[JobData] = None, environ: Optional[dict] = None,
                     payload_env: Optional[dict] = None) -> List[str]:
    """The pilot's credential paths to hide from the payload.

    Never hidden: the job's own proxy, and a proxy the payload's environment deliberately points at
    (``payload_env['X509_USER_PROXY']``, for jobs that need the pilot's identity).
    """
    keep = set()
    if job is not None and job.workdir:
        keep.add(os.path.realpath(payload_proxy_path(job.workdir)))
    if payload_env and payload_env.get("X509_USER_PROXY"):
        keep.add(os.path.realpath(payload_env["X509_USER_PROXY"]))
    return [p for p in pilot_credential_paths(environ) if p not in keep]


def container_spec(job: JobData, queuedata: Optional[QueueData] = None, workdir: str = "", image: Optional[str] = None,
                   environ: Optional[dict] = None, payload_env: Optional[dict] = None,
                   extra_binds: Optional[List[Bind]] = None) -> ContainerSpec:
    """The container of a job's payload: image, binds and options from the queue, credential masks."""
    queuedata = job_queuedata(job, queuedata)
    binds, options = parse_container_options(getattr(queuedata, "container_options", "") or "")
    binds = list(extra_binds or []) + binds
    return ContainerSpec(image=select_image(job) if image is None else image, workdir=workdir or job.workdir,
                         binds=binds, options=options, masks=credential_masks(job, environ, payload_env),
                         env={"PILOT_CONTAINER": "1"})


def wrapper(executable: str, **kwargs: Any) -> str:
    """``executable`` wrapped in the job's container runtime.

    Keyword arguments: ``job`` (required), ``workdir``, ``queuedata``, ``env`` (the payload's
    environment, to keep a proxy it points at visible), ``binds`` (extra ``Bind`` mounts, e.g. the
    experiment's software area). Raises PilotException with the
    container code (1325/1372 runtime missing, 1360 no image, 1384 unknown runtime).
    """
    job = kwargs.get("job")
    if job is None:
        logger.warning("container wrapper called without a job: command left as it is")
        return executable
    runtime = get_runtime(payload_tool(job, kwargs.get("queuedata")) or DEFAULT_RUNTIME)
    spec = container_spec(job, kwargs.get("queuedata"), kwargs.get("workdir") or "", payload_env=kwargs.get("env"),
                          extra_binds=kwargs.get("binds"))
    line = runtime.wrap(executable, spec)
    logger.info("job %s: payload runs in %s", job.jobid, runtime.name)
    return line


def get_middleware_container_script(middleware_container: str = "", cmd: str = "", asetup: bool = False,
                                    **kwargs: Any) -> str:
    """The script run inside the middleware container: the stage-in/out command, then its exit code."""
    return f"python3 {cmd}\nexit $?\n"


def create_middleware_container_command(workdir: str, cmd: str, container_options: str = "",
                                        label: str = "stage-in", **kwargs: Any) -> str:
    """A shell line running a stage-in/out command in the queue's middleware container.

    The script is written to ``<workdir>/stagein.sh`` or ``stageout.sh``; the runtime is the
    queue's ``middleware`` container_type entry (apptainer by default), the image
    ``[Container] middleware_container``.
    """
    name = "stagein.sh" if label in ("stage-in", "stagein") else "stageout.sh"
    image = str(config.Container.get("middleware_container", "") or "")
    path = os.path.join(workdir, name)
    with open(path, "w") as handle:
        handle.write(get_middleware_container_script(image, cmd))
    os.chmod(path, 0o755)
    queuedata = kwargs.get("queuedata")
    tool = parse_container_type(getattr(queuedata, "container_type", None) or {}).get("middleware", DEFAULT_RUNTIME)
    binds, options = parse_container_options(container_options)
    spec = ContainerSpec(image="" if tool in ("bwrap", "bubblewrap") else image, workdir=workdir,
                         binds=binds, options=options)
    return get_runtime(tool).wrap(f"bash {path}", spec)
