"""Range outputs to storage: premerge tarballs, their destination and their upload (compat §12).

Finished ranges are packed as ``EventService_premerge_<first rangeID>.tar`` (scope ``transient``)
and uploaded with the Data API's :class:`~pilot.api.es_data.StageOutESClient`: to the queue's
``es_events`` storage (else the ``pw``/``w`` one), with the ``es_failover`` storage as the
alternative destination when it is a different one.
"""

from __future__ import annotations

import logging
import os
import tarfile
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from pilot.api.es_data import StageOutESClient
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException, StageOutFailure
from pilot.info.filespec import FileSpec

if TYPE_CHECKING:
    from pilot.info.queuedata import QueueData
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

PREMERGE_PREFIX = "EventService_premerge_"
ES_SCOPE = "transient"
#: activities that choose the copytool and the primary storage of range outputs, in order
ES_ACTIVITIES = ["es_events", "pw", "w"]
FAILOVER_ACTIVITY = "es_failover"


def premerge_name(range_id: str) -> str:
    """``EventService_premerge_<rangeID>.tar``."""
    return f"{PREMERGE_PREFIX}{range_id}.tar"


def output_path(message: dict, workdir: str) -> str:
    """The real path of a range's output; it must be a file inside the job's work dir.

    Raises ``PilotException`` (1103 NOSUCHFILE) otherwise: the pilot uploads nothing from elsewhere.
    """
    path = message.get("output") or ""
    full = os.path.realpath(path if os.path.isabs(path) else os.path.join(workdir, path))
    root = os.path.realpath(workdir)
    if os.path.commonpath([full, root]) != root:
        raise PilotException(f"range {message.get('id')}: output {path} is outside the work dir",
                             code=ErrorCodes.NOSUCHFILE)
    if not os.path.isfile(full):
        raise PilotException(f"range {message.get('id')}: output {path} does not exist", code=ErrorCodes.NOSUCHFILE)
    return full


def pack_outputs(messages: list, workdir: str) -> tuple:
    """Pack the outputs of finished ranges into one premerge tarball.

    Returns (tarball path, packed messages, bad messages). Outputs whose member names would clash
    or that are missing or outside the work dir are left out (bad).
    """
    if not messages:
        return "", [], []
    tarball = os.path.join(workdir, premerge_name(messages[0]["id"]))
    packed, bad, names = [], [], set()
    tmp = tarball + ".part"
    with tarfile.open(tmp, "w") as tar:
        for message in messages:
            try:
                path = output_path(message, workdir)
            except PilotException as exc:
                logger.warning("%s", exc.diag)
                bad.append(message)
                continue
            name = os.path.basename(path)
            if name in names:
                logger.warning("range %s: output name %s already packed", message["id"], name)
                bad.append(message)
                continue
            names.add(name)
            tar.add(path, arcname=name)
            message["path"] = path
            packed.append(message)
    if not packed:
        os.unlink(tmp)
        return "", [], bad
    os.replace(tmp, tarball)
    return tarball, packed, bad


def es_destinations(queuedata: Optional[QueueData]) -> tuple:
    """(primary storage, failover storage or None) of range outputs from the queue's ``astorages``."""
    astorages = getattr(queuedata, "astorages", None) or {}
    primary = next((astorages[a][0] for a in ES_ACTIVITIES if astorages.get(a)), "")
    failover = (astorages.get(FAILOVER_ACTIVITY) or [None])[0]
    return primary, (failover if failover and failover != primary else None)


@dataclass
class Uploaded:
    """Where a premerge tarball went."""

    lfn: str
    ddmendpoint: str
    storage_id: Any
    fsize: int
    checksum: dict = field(default_factory=dict)
    surl: str = ""


def upload(path: str, job: JobData, infosys: Any, client_factory: Optional[Callable[[], Any]] = None,
           transfer_kwargs: Optional[dict] = None) -> Uploaded:
    """Stage out one file of range outputs; raises ``StageOutFailure`` (or the copytool's code) on failure."""
    workdir = os.path.dirname(path)
    primary, failover = es_destinations(getattr(infosys, "queuedata", None))
    spec = FileSpec(lfn=os.path.basename(path), scope=ES_SCOPE, filetype="output", workdir=workdir,
                    guid=str(uuid.uuid4()), ddmendpoint=primary, ddmendpoint_alt=failover)
    client = client_factory() if client_factory is not None else StageOutESClient(infosys, logger=logger)
    kwargs = dict(workdir=workdir, cwd=workdir, usecontainer=False, job=job)
    kwargs.update(transfer_kwargs or {})
    client.transfer([spec], activity=list(ES_ACTIVITIES), **kwargs)
    if not spec.is_transferred:
        raise StageOutFailure(f"{spec.lfn} was not staged out: {spec.transfer_error or spec.status}",
                              code=spec.status_code or ErrorCodes.STAGEOUTFAILED)
    where = spec.ddmendpoint_alt if spec.is_altstaged and spec.ddmendpoint_alt else spec.ddmendpoint
    try:
        storage_id = infosys.get_storage_id(where) if infosys is not None else 0
    except PilotException as exc:
        logger.warning("no storage id for %s: %s", where, exc.diag)
        storage_id = 0
    logger.info("staged out %s to %s (storage id %s)", spec.lfn, where, storage_id)
    return Uploaded(lfn=spec.lfn, ddmendpoint=where, storage_id=storage_id, fsize=spec.filesize,
                    checksum=dict(spec.checksum), surl=spec.turl or spec.surl)
