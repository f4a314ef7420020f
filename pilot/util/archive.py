"""The job's log tarball, written by the pilot from a checked list of the work dir's files.

The work dir belongs to the payload, so it is walked through directory descriptors
(``O_DIRECTORY | O_NOFOLLOW``, ``openat``-style), every member is opened with
:func:`pilot.util.safefile.open_checked` semantics (``O_NOFOLLOW | O_NONBLOCK``, ``fstat`` on the
descriptor, at most the size seen) and streamed from that descriptor into the archive:

* regular files and directories are archived (under ``<top>/``);
* a symlink is archived as the regular file it points to when that file lies inside the work dir
  (Pilot 2 packs with links dereferenced); a link out of the work dir, to a directory, dangling or
  looping is left out;
* FIFOs, sockets and devices are left out;
* every member left out gets one log line (name and why).

The archive is gzip at level 6 (what ``tar czf`` uses) through the C zlib, written to a new file
created with ``O_EXCL | O_NOFOLLOW`` under a fresh random name and renamed over the final name at the
end: a name the payload made first (``<logFile>``, ``<logFile>.part``, a link anywhere) is never
written through. An empty work dir still gives a valid tarball (the top directory alone).
"""

from __future__ import annotations

import logging
import os
import stat
import tarfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.util.safefile import (DIR_FLAGS, READ_FLAGS, CheckedFile, create_exclusive, file_kind, inside,
                                 private_name)

logger = logging.getLogger(__name__)

#: gzip level of ``tar czf`` (gzip's default)
GZIP_LEVEL = 6
#: bytes read from a member per step
COPY_BUFSIZE = 1024 * 1024
#: directory depth the walk descends at most (deeper directories are left out with a log line)
MAX_DEPTH = 64


@dataclass
class ArchiveReport:
    """What went into the tarball and what was left out (name -> reason)."""

    members: int = 0
    bytes: int = 0
    skipped: dict = field(default_factory=dict)


class _Walker:
    """Adds the work dir's members to an open TarFile, checking each one on its descriptor."""

    def __init__(self, tar: tarfile.TarFile, root: str, top: str, skip: Callable[[str], bool], deadline: float,
                 report: ArchiveReport) -> None:
        self.tar = tar
        self.root = os.path.realpath(root)
        self.top = top
        self.skip = skip
        self.deadline = deadline
        self.report = report
        self.names: dict = {}  # uid/gid -> name cache (one passwd lookup per owner, not per member)

    def leave_out(self, rel: str, why: str) -> None:
        self.report.skipped[rel] = why
        logger.warning("log tarball: %s left out: %s", rel, why)

    def owner(self, st: os.stat_result) -> tuple:
        key = (st.st_uid, st.st_gid)
        if key not in self.names:
            uname = gname = ""
            try:
                import pwd
                uname = pwd.getpwuid(st.st_uid).pw_name
            except (ImportError, KeyError):
                pass
            try:
                import grp
                gname = grp.getgrgid(st.st_gid).gr_name
            except (ImportError, KeyError):
                pass
            self.names[key] = (uname, gname)
        return self.names[key]

    def info(self, rel: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
        info = tarfile.TarInfo(f"{self.top}/{rel}" if rel else self.top)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname, info.gname = self.owner(st)
        info.mtime = int(st.st_mtime)
        info.type = kind
        info.size = st.st_size if kind == tarfile.REGTYPE else 0
        return info

    def add_file(self, rel: str, checked: CheckedFile) -> None:
        self.tar.addfile(self.info(rel, checked.stat, tarfile.REGTYPE), _Timed(checked, self.deadline))
        self.report.members += 1
        self.report.bytes += checked.size

    def walk(self, dfd: int, rel: str, depth: int) -> None:
        _check_deadline(self.deadline)
        with os.scandir(dfd) as entries:
            names = sorted(entry.name for entry in entries)
        for name in names:
            sub = f"{rel}/{name}" if rel else name
            if not rel and self.skip(name):
                continue
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except OSError as exc:
                self.leave_out(sub, f"cannot be examined ({exc.strerror})")
                continue
            if stat.S_ISREG(st.st_mode):
                self.add_opened(dfd, name, sub)
            elif stat.S_ISDIR(st.st_mode):
                self.add_dir(dfd, name, sub, depth)
            elif stat.S_ISLNK(st.st_mode):
                self.add_link(sub)
            else:
                self.leave_out(sub, f"is a {file_kind(st.st_mode)}")

    def add_opened(self, dfd: int, name: str, sub: str, path: Optional[str] = None) -> None:
        try:
            fd = os.open(path or name, READ_FLAGS, dir_fd=None if path else dfd)
        except OSError as exc:
            self.leave_out(sub, f"cannot be opened ({exc.strerror})")
            return
        checked = CheckedFile(fd, path or sub, os.fstat(fd))
        with checked:
            if not stat.S_ISREG(checked.stat.st_mode):
                self.leave_out(sub, f"is a {file_kind(checked.stat.st_mode)}")
                return
            self.add_file(sub, checked)

    def add_dir(self, dfd: int, name: str, sub: str, depth: int) -> None:
        if depth >= MAX_DEPTH:
            self.leave_out(sub, f"deeper than {MAX_DEPTH} directories")
            return
        try:
            child = os.open(name, DIR_FLAGS, dir_fd=dfd)
        except OSError as exc:
            self.leave_out(sub, f"directory cannot be opened ({exc.strerror})")
            return
        try:
            self.tar.addfile(self.info(sub, os.fstat(child), tarfile.DIRTYPE))
            self.report.members += 1
            self.walk(child, sub, depth + 1)
        finally:
            os.close(child)

    def add_link(self, sub: str) -> None:
        target = os.path.realpath(os.path.join(self.root, sub))
        if not inside(target, self.root):
            self.leave_out(sub, f"symlink to {target}, outside the work dir")
            return
        try:
            st = os.lstat(target)
        except OSError:
            self.leave_out(sub, "dangling symlink")
            return
        if not stat.S_ISREG(st.st_mode):
            self.leave_out(sub, f"symlink to a {file_kind(st.st_mode)}")
            return
        self.add_opened(-1, "", sub, path=target)


def create_tarball(workdir: str, dest: str, top: str, skip: Callable[[str], bool], timeout: float,
                   level: int = GZIP_LEVEL) -> ArchiveReport:
    """Archive ``workdir`` (its top-level names for which ``skip`` is false) as ``dest`` under ``top/``.

    ``dest`` is written as a new file under a random name next to it, then renamed into place. Raises
    PilotException 1376 LOGCREATIONTIMEOUT past ``timeout`` seconds, 1320 LOGFILECREATIONFAILURE when
    the file cannot be written; OSError from the walk of the top directory propagates.
    """
    report = ArchiveReport()
    tmp = private_name(dest)
    tmp_name = os.path.basename(tmp)
    dest_name = os.path.basename(dest)

    def skip_own(name: str) -> bool:
        return name in (tmp_name, dest_name) or skip(name)

    try:
        fd = create_exclusive(tmp, 0o644)
    except OSError as exc:
        raise PilotException(f"cannot create the log tarball {tmp}: {exc.strerror}",
                             code=ErrorCodes.LOGFILECREATIONFAILURE) from None
    root_fd = -1
    try:
        with os.fdopen(fd, "wb", buffering=0) as raw:
            sink = _GzipSink(raw, level)
            # typeshed's open() wants a seekable, readable file and omits copybufsize: mode "w" only
            # writes and tells, and open() hands copybufsize to TarFile
            with tarfile.open(fileobj=sink, mode="w", format=tarfile.GNU_FORMAT,  # type: ignore[call-overload]
                              copybufsize=COPY_BUFSIZE) as tar:
                root_fd = os.open(workdir, DIR_FLAGS)
                walker = _Walker(tar, workdir, top, skip_own, time.monotonic() + timeout, report)
                tar.addfile(walker.info("", os.fstat(root_fd), tarfile.DIRTYPE))
                walker.walk(root_fd, "", 0)
            sink.finish()
        os.replace(tmp, dest)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError):
            raise PilotException(f"cannot write the log tarball: {exc}",
                                 code=ErrorCodes.LOGFILECREATIONFAILURE) from None
        raise
    finally:
        if root_fd >= 0:
            os.close(root_fd)
    return report


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise PilotException("log tarball not created in time", code=ErrorCodes.LOGCREATIONTIMEOUT)


class _Timed:
    """A member's reader that gives up (1376) once the archive's time is over."""

    __slots__ = ("checked", "deadline")

    def __init__(self, checked: CheckedFile, deadline: float) -> None:
        self.checked = checked
        self.deadline = deadline

    def read(self, n: int = -1) -> bytes:
        _check_deadline(self.deadline)
        return self.checked.read(n)


class _GzipSink:
    """A write-only file object that gzips what it is given into ``raw`` (C zlib, gzip framing by zlib).

    zlib writes the gzip header and trailer itself (``wbits=31``) and computes the CRC as it deflates,
    so a member's bytes pass through Python once; writes are gathered to ``COPY_BUFSIZE`` before the
    system call.
    """

    def __init__(self, raw: Any, level: int) -> None:
        import zlib

        self.raw = raw
        self.zip = zlib.compressobj(level, zlib.DEFLATED, 31)
        self.pending: list = []
        self.pending_size = 0
        self.offset = 0

    def tell(self) -> int:
        return self.offset

    def write(self, data: bytes) -> int:
        self.offset += len(data)
        out = self.zip.compress(data)
        if out:
            self.pending.append(out)
            self.pending_size += len(out)
            if self.pending_size >= COPY_BUFSIZE:
                self._drain()
        return len(data)

    def _drain(self) -> None:
        self.raw.write(b"".join(self.pending))
        self.pending, self.pending_size = [], 0

    def finish(self) -> None:
        self.pending.append(self.zip.flush())
        self._drain()


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


__all__: Any = ["ArchiveReport", "GZIP_LEVEL", "create_tarball"]
