"""The parts of a transfer that are done once for every copytool: where a file comes from or goes to,
whether it fits, whether it arrived intact, and how long to wait before trying again.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import stat
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool.common import CHECKSUM, MISSING, deterministic_path, join_url, local_file_path
from pilot.util.filehandling import calculate_checksum, checksums_equal, remove_file

if TYPE_CHECKING:
    from pilot.info.queuedata import QueueData
    from pilot.info.filespec import FileSpec

logger = logging.getLogger(__name__)

MB = 1024 * 1024


# ---------------------------------------------------------------------- retries
@dataclass
class RetryPolicy:
    """Jittered exponential back-off: attempt n waits ``base * 2**(n-1) * U(0.5, 1.5)`` (capped)."""

    attempts: int = 3  # tries of the same source/destination for retryable error classes
    base: float = 2.0
    cap: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before try number ``attempt + 1``."""
        return min(self.cap, self.base * (2 ** max(0, attempt - 1))) * random.uniform(0.5, 1.5)

    def wait(self, attempt: int, stop: Optional[threading.Event] = None) -> bool:
        """Sleep before the next attempt; False when ``stop`` was set meanwhile."""
        event = stop or threading.Event()
        return not event.wait(self.delay(attempt))


# ---------------------------------------------------------------------- inputs
def resolve_input_protocols(files: list, ddmconf: dict, queuedata: QueueData, allowed_schemas: Optional[list],
                            input_dir: str = "") -> None:
    """Fill ``fspec.replicas`` from ``--input-dir`` or the read protocols of the files' storages.

    Replicas are dicts ``{ddmendpoint, pfn, domain}``; LAN protocols come before WAN ones.
    """
    for fspec in files:
        if fspec.replicas:
            continue
        replicas = []
        if input_dir:
            path = os.path.join(os.path.abspath(input_dir), fspec.lfn)
            replicas.append({"ddmendpoint": fspec.ddmendpoint or "", "pfn": f"file://{path}", "domain": "lan"})
        for ddm in input_storages(fspec, queuedata):
            storage = ddmconf.get(ddm)
            if storage is None:
                continue
            for domain, activity in (("lan", "read_lan"), ("wan", "read_wan")):
                for proto in storage.get_protocols(activity):
                    if not scheme_allowed(proto.get("endpoint", ""), allowed_schemas):
                        continue
                    rel = deterministic_path(fspec.scope, fspec.lfn) if storage.is_deterministic else fspec.lfn
                    pfn = join_url(proto.get("endpoint", ""), proto.get("path", ""), rel)
                    if not any(r["pfn"] == pfn for r in replicas):
                        replicas.append({"ddmendpoint": ddm, "pfn": pfn, "domain": domain})
        fspec.replicas = replicas


def input_storages(fspec: FileSpec, queuedata: Optional[QueueData]) -> list:
    """Storages to read a file from: its ``inputddms``, its ddmendpoint, then the queue's read storages."""
    names = list(fspec.inputddms or [])
    if fspec.ddmendpoint and fspec.ddmendpoint not in names:
        names.append(fspec.ddmendpoint)
    if queuedata is not None:
        for activity in ("pr", "read_lan"):
            for ddm in queuedata.astorages.get(activity) or []:
                if ddm not in names:
                    names.append(ddm)
    return names


def scheme_allowed(url: str, allowed: Optional[list]) -> bool:
    """Whether the URL's scheme is in ``allowed`` (None = any; '' matches a plain path)."""
    if not allowed:
        return True
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return scheme in allowed


def check_space(files: list, queuedata: Optional[QueueData], workdir: str) -> None:
    """Input space check: total size must fit the queue's limits and the free disk of ``workdir``.

    Raises 1168 SIZETOOLARGE (over ``maxinputsize``/``maxwdir``) or 1098 NOLOCALSPACE (disk too full);
    skipped when the queue's maxinputsize is -1.
    """
    total = sum(int(f.filesize or 0) for f in files if f.status not in ("remote_io", "no_transfer"))
    if not total:
        return
    maxinput = int(getattr(queuedata, "maxinputsize", 0) or 0) if queuedata is not None else 0
    if maxinput == -1:
        return
    maxwdir = int(getattr(queuedata, "maxwdir", 0) or 0) if queuedata is not None else 0
    limit_mb = min([v for v in (maxinput, maxwdir) if v > 0], default=0)
    if limit_mb and total > limit_mb * MB:
        raise PilotException(f"total input size {total} B exceeds the queue limit of {limit_mb} MB",
                             code=ErrorCodes.SIZETOOLARGE, state="NO_SPACE")
    path = workdir if workdir and os.path.isdir(workdir) else os.getcwd()
    free = shutil.disk_usage(path).free
    if total > free:
        raise PilotException(f"not enough local space in {path}: {free} B free, {total} B needed",
                             code=ErrorCodes.NOLOCALSPACE, state="NO_SPACE")


def verify_input(fspec: FileSpec, workdir: str) -> None:
    """Size and checksum of a downloaded file against the job's values (and the storage's, if reported).

    A mismatch removes the bad copy and raises with the error class ``checksum`` (try another replica):
    1171 GETADMISMATCH / 1145 GETMD5MISMATCH, or 1099 (state FS_MISMATCH) for a size mismatch. A
    symlinked input (no bytes moved) is checked by size only.
    """
    path = local_file_path(fspec, workdir)
    try:
        info = os.lstat(path)  # one system call for a plain file; a link needs its target's too
        is_link = stat.S_ISLNK(info.st_mode)
        if is_link:
            info = os.stat(path)
    except (OSError, ValueError):  # what os.path.exists takes for "not there" (a dangling link included)
        raise PilotException(f"{fspec.lfn} reported transferred but {path} does not exist",
                             code=ErrorCodes.MISSINGINPUTFILE, state="MISSING_INPUT", kind=MISSING) from None
    size = info.st_size
    if fspec.filesize and size != int(fspec.filesize):
        remove_file(path)
        raise PilotException(f"size mismatch for {fspec.lfn}: {size} B != expected {fspec.filesize} B",
                             code=ErrorCodes.STAGEINFAILED, state="FS_MISMATCH", kind=CHECKSUM)
    if not fspec.filesize:
        fspec.filesize = size
    if is_link:
        # a symlink (mv in symlink mode: a shared input area, an ARC cache) moved no bytes: reading the
        # whole source to checksum it would double the payload's I/O on a shared file system; the size
        # was checked above, the payload reads the bytes itself (Pilot 2 does not check them either)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s is a link to %s: size checked, checksum not recomputed", fspec.lfn, os.readlink(path))
        return
    expected, kind = fspec.get_checksum()
    if not expected:
        fspec.checksum["adler32"] = calculate_checksum(path, "adler32")
        return
    if kind not in ("adler32", "md5"):
        logger.warning("cannot verify checksum type %s of %s", kind, fspec.lfn)
        return
    # a checksum the tool computed over the received bytes (xrdcp --cksum print) saves reading the file again
    remote = (fspec.remote_checksum or {}).get(kind)
    actual = remote or calculate_checksum(path, kind)
    if not checksums_equal(actual, expected):
        remove_file(path)
        md5 = kind == "md5"
        raise PilotException(f"{kind} checksum mismatch for {fspec.lfn}: local {actual}, storage {remote or '-'}, "
                             f"expected {expected}",
                             code=ErrorCodes.GETMD5MISMATCH if md5 else ErrorCodes.GETADMISMATCH,
                             state="MD5_MISMATCH" if md5 else "AD_MISMATCH", kind=CHECKSUM)


# ---------------------------------------------------------------------- outputs
def prepare_output(fspec: FileSpec, workdir: str, root: Optional[str] = None) -> None:
    """Size and adler32 of a local output file, computed on its checked descriptor before upload.

    The file must be a regular file (:func:`pilot.util.safefile.open_checked`); with ``root`` (the job's
    work dir, given in the pilot's job flow) a symlink must also resolve to a regular file inside it.
    Missing: 1103 NOSUCHFILE; a link out of the work dir: 1371 BADOUTPUTFILENAME; a directory, FIFO,
    socket, device or unreadable file: 1303 FILEHANDLINGFAILURE. The size is the one ``fstat`` saw and
    the checksum reads no more than that.
    """
    from pilot.util.safefile import open_checked

    path = local_file_path(fspec, workdir)
    with open_checked(path, root) as checked:
        fspec.filesize = checked.size
        fspec.checksum["adler32"] = checked.checksum("adler32")


def output_storages(fspec: FileSpec, queuedata: Optional[QueueData], activities: list) -> list:
    """Destinations in order: the file's ddmendpoint (else the first storage of the activity), then
    ``ddmendpoint_alt``."""
    primary = fspec.ddmendpoint
    if not primary and queuedata is not None:
        for activity in activities:
            storages = queuedata.astorages.get(activity) or []
            if storages:
                primary = storages[0]
                break
    out = [primary] if primary else []
    if fspec.ddmendpoint_alt and fspec.ddmendpoint_alt not in out:
        out.append(fspec.ddmendpoint_alt)
    return out


def resolve_surl(fspec: FileSpec, storage: Any, allowed_schemas: Optional[list]) -> dict:
    """The write protocol and SURL of a file on ``storage``; raises 1313 NOSTORAGEPROTOCOL / 1329."""
    protocols = [p for p in storage.get_write_protocols() if scheme_allowed(p.get("endpoint", ""), allowed_schemas)]
    if not protocols:
        raise PilotException(f"no write protocol of {storage.name} for schemes {allowed_schemas}",
                             code=ErrorCodes.NOSTORAGEPROTOCOL, state="NO_PROTOCOL")
    proto = protocols[0]
    if storage.is_deterministic:
        rel = deterministic_path(fspec.scope, fspec.lfn)
    elif storage.type and "OS_" in storage.type.upper():
        rel = fspec.lfn
    else:
        raise PilotException(f"storage {storage.name} is not deterministic", code=ErrorCodes.NONDETERMINISTICDDM,
                             state="NO_PROTOCOL")
    surl = join_url(proto.get("endpoint", ""), proto.get("path", ""), rel)
    return {"surl": surl, "protocol_id": proto.get("id"), "endpoint": proto.get("endpoint", "")}


def verify_output(fspec: FileSpec) -> None:
    """Compare the checksum the storage reported (if any) with the local one: 1172 / 1141 on mismatch."""
    for kind in ("adler32", "md5"):
        remote = (fspec.remote_checksum or {}).get(kind)
        local = fspec.checksum.get(kind)
        if remote and local and not checksums_equal(remote, local):
            md5 = kind == "md5"
            raise PilotException(f"{kind} mismatch after upload of {fspec.lfn}: storage {remote}, local {local}",
                                 code=ErrorCodes.PUTMD5MISMATCH if md5 else ErrorCodes.PUTADMISMATCH,
                                 state="MD5_MISMATCH" if md5 else "AD_MISMATCH", kind=CHECKSUM)
