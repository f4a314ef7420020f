"""Transfers in the middleware container: copytool commands run inside the runtime the queue names.

A queue whose ``container_type`` has a ``middleware`` entry (e.g. ``bwrap:middleware``,
``apptainer:middleware``) wants the transfer tools (``xrdcp``, ``gfal-copy``, ``lsm-get``/``put``...)
to run in that container rather than on the host, because the host lacks them or has other
versions. The Data API marks each transfer with :func:`transfers_in` (from the queue data it was
given); :func:`wrap_line` in :func:`pilot.copytool.common.run_tool` then runs every tool command of
that transfer through the runtime, with the job's work dir bound writable and the image
``[Container] middleware_container`` (bubblewrap runs on the host's root, read-only, when that is
not an unpacked image directory). In-process tools (``mv``, ``s3``, ``gs``) run no command and are
not affected. Pilot 2 ran its whole stage-in script inside the container; here only the commands
are, which keeps the Data API's checks, retries and traces in the pilot.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional

from pilot.util.config import config

if TYPE_CHECKING:
    from pilot.info.queuedata import QueueData

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Middleware:
    """The runtime and work dir of the transfer running in this thread."""

    runtime: str
    workdir: str
    image: str = ""


_CURRENT: contextvars.ContextVar = contextvars.ContextVar("pilot_middleware_container", default=None)


def middleware_runtime(queuedata: Optional[QueueData]) -> str:
    """The runtime the queue names for ``middleware`` ('' for none)."""
    from pilot.info.queuedata import parse_container_type

    value = getattr(queuedata, "container_type", None) if queuedata is not None else None
    try:
        return parse_container_type(value or {}).get("middleware", "")
    except (TypeError, ValueError, AttributeError):
        return ""


@contextlib.contextmanager
def transfers_in(queuedata: Optional[QueueData], workdir: str) -> Iterator[Optional[Middleware]]:
    """Within the block, tool commands of this thread run in the queue's middleware container (if any)."""
    runtime = middleware_runtime(queuedata)
    if not runtime:
        yield None
        return
    image = str(config.Container.get("middleware_container", "") or "")
    token = _CURRENT.set(Middleware(runtime, workdir, image))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)


def wrap_line(line: str) -> Optional[str]:
    """The shell line running ``line`` in the current middleware container; None when there is none.

    Raises PilotException (1325/1372/1384...) when the runtime is unknown or not installed.
    """
    current = _CURRENT.get()
    if current is None:
        return None
    from pilot.api.container import ContainerSpec, get_runtime

    runtime = get_runtime(current.runtime)
    image = current.image
    if runtime.name == "bwrap" and image and not os.path.isdir(image):  # bwrap needs an unpacked directory
        logger.info("middleware image %s is not an unpacked directory: bubblewrap uses the host's root", image)
        image = ""
    wrapped = runtime.wrap(line, ContainerSpec(image=image, workdir=current.workdir))
    logger.info("transfer command runs in the middleware container (%s)", runtime.name)
    return wrapped
