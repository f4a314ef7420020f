"""The one checked open of the pilot: files the payload may have left are opened only as checked regular files.

After the payload has started, everything in its work dir is attacker-controlled: a name may be a
symlink to the pilot's proxy or to ``/dev/zero``, a FIFO that blocks any reader, a device, a socket or
a directory. Every read of such a file by the pilot goes through :func:`open_checked`:

* the name is opened with ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO cannot block the open, a link swapped in
  after the check is not followed);
* a symlink is followed only when ``root`` (the job's work dir) is given and the link resolves to a
  regular file inside it, or when no ``root`` is given (callers outside a job, e.g. Harvester's use of
  the Data API) and it resolves to a regular file;
* ``fstat`` on the open descriptor decides: only a regular file passes;
* reads never go past the size seen by that ``fstat`` (:meth:`CheckedFile.read`, :meth:`CheckedFile.chunks`).

What is refused raises :class:`UnsafeFile` (a PilotException) whose code says why:

========================  ====  =================================================================
refused                   code  name (Pilot 2)
========================  ====  =================================================================
does not exist            1103  NOSUCHFILE
link out of the work dir  1371  BADOUTPUTFILENAME (the name resolves to a place it may not name)
not a regular file        1303  FILEHANDLINGFAILURE (directory, FIFO, socket, device, dangling or
                                looping link)
cannot be opened          1303  FILEHANDLINGFAILURE (permission denied, I/O error)
========================  ====  =================================================================

Files the pilot writes into a directory the payload could write are created with
:func:`create_exclusive` (``O_CREAT | O_EXCL | O_NOFOLLOW``) under a fresh random name, then renamed
into place: a name the payload made first is never written through.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Iterator, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException

#: flags of every read-only open of a file the payload could have touched
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
#: flags of every file the pilot creates where the payload could have placed a name first
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
#: directory opens of the tarball walk
DIR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)

CHUNK = 1024 * 1024

# what a refusal was about (``UnsafeFile.reason``)
MISSING = "missing"
LINK_OUT = "link leaves the work dir"
NOT_REGULAR = "not a regular file"
UNREADABLE = "cannot be opened"


class UnsafeFile(PilotException):
    """A file the pilot refused to read; ``reason`` is one of the module's reason strings."""

    default_code = ErrorCodes.FILEHANDLINGFAILURE

    def __init__(self, message: str, code: int, reason: str, **kwargs: object) -> None:
        super().__init__(message, code=code, **kwargs)
        self.reason = reason


def file_kind(mode: int) -> str:
    """A short word for a file type (for log lines and error messages)."""
    if stat.S_ISREG(mode):
        return "regular file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def inside(path: str, root: str) -> bool:
    """Whether absolute ``path`` lies strictly below absolute ``root`` (both already resolved)."""
    return path != root and path.startswith(root.rstrip("/") + "/")


class CheckedFile:
    """An open regular file whose size was taken from ``fstat`` on the descriptor; reads stay within it."""

    __slots__ = ("fd", "path", "stat", "size", "_pos")

    def __init__(self, fd: int, path: str, st: os.stat_result) -> None:
        self.fd = fd
        self.path = path  # the name opened (a link's target path when a link was followed)
        self.stat = st
        self.size = st.st_size
        self._pos = 0

    def __enter__(self) -> "CheckedFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the descriptor (twice is harmless)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def fileno(self) -> int:
        return self.fd

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left when negative), never past the size seen at open.

        A file that shrank meanwhile reads as zeros up to that size, so a reader that trusts the size
        (a tar member) stays consistent; it is never read beyond it, however much it grew.
        """
        left = self.size - self._pos
        if n is None or n < 0 or n > left:
            n = left
        if n <= 0:
            return b""
        data = os.pread(self.fd, n, self._pos)
        if len(data) < n:  # shrank since the fstat: pad, the size was announced already
            data += bytes(n - len(data))
        self._pos += n
        return data

    def chunks(self, blocksize: int = CHUNK) -> Iterator[bytes]:
        """The file's bytes in pieces, from the start, at most ``size`` in all (stops early if it shrank)."""
        offset = 0
        while offset < self.size:
            data = os.pread(self.fd, min(blocksize, self.size - offset), offset)
            if not data:
                return
            offset += len(data)
            yield data

    def checksum(self, algorithm: str = "adler32") -> str:
        """The file's checksum over the checked size (the pilot's one checksum helper)."""
        from pilot.util.checksum import checksum_of_chunks
        return checksum_of_chunks(self.chunks(), algorithm, self.path)


def _refuse(path: str, what: str, code: int, reason: str) -> UnsafeFile:
    state = "NO_FILE" if reason == MISSING else "COPY_ERROR"
    kind = "missing" if reason == MISSING else "config"
    return UnsafeFile(f"{path}: {what}", code, reason, state=state, kind=kind)


def open_checked(path: str, root: Optional[str] = None) -> CheckedFile:
    """Open ``path`` as a checked regular file (see the module text); raise :class:`UnsafeFile` otherwise.

    With ``root`` the name is examined (``lstat``) before it is opened, so nothing but a regular file
    (or a link to one inside ``root``) is ever opened; without it the name is opened at once with
    ``O_NOFOLLOW | O_NONBLOCK`` (one system call less on the stage-in path) and judged by ``fstat``.
    """
    target = path if root is None else _examined(path, root)
    try:
        fd = _open(path, target, follow_hint=root is None)
    except _Link:
        target = _examined(path, None)  # a link, outside a job's work dir: followed to a regular file
        fd = _open(path, target, follow_hint=False)
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise _refuse(path, f"cannot be examined ({exc.strerror})", ErrorCodes.FILEHANDLINGFAILURE,
                      UNREADABLE) from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _refuse(path, f"is a {file_kind(st.st_mode)}, not a regular file", ErrorCodes.FILEHANDLINGFAILURE,
                      NOT_REGULAR)
    return CheckedFile(fd, target, st)


class _Link(Exception):
    """The name opened was a symlink (``O_NOFOLLOW`` said ELOOP)."""


def _open(path: str, target: str, follow_hint: bool) -> int:
    try:
        return os.open(target, READ_FLAGS)
    except FileNotFoundError:
        raise _refuse(path, "does not exist", ErrorCodes.NOSUCHFILE, MISSING) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            if follow_hint:
                raise _Link() from None
            raise _refuse(path, "became a symlink", ErrorCodes.FILEHANDLINGFAILURE, NOT_REGULAR) from None
        raise _refuse(path, f"cannot be opened ({exc.strerror})", ErrorCodes.FILEHANDLINGFAILURE,
                      UNREADABLE) from None


def _examined(path: str, root: Optional[str]) -> str:
    """The path to open for ``path``: itself, or a link's resolved target (checked against ``root``).

    Raises :class:`UnsafeFile` unless what is there (after the link) is a regular file.
    """
    try:
        lst = os.lstat(path)
    except FileNotFoundError:
        raise _refuse(path, "does not exist", ErrorCodes.NOSUCHFILE, MISSING) from None
    except OSError as exc:
        raise _refuse(path, f"cannot be examined ({exc.strerror})", ErrorCodes.FILEHANDLINGFAILURE,
                      UNREADABLE) from None
    target = path
    if stat.S_ISLNK(lst.st_mode) or (root is not None and not _plain_below(path, root)):
        target = os.path.realpath(path)
        if root is not None and not inside(target, os.path.realpath(root)):
            raise _refuse(path, f"resolves to {target}, outside the work dir", ErrorCodes.BADOUTPUTFILENAME,
                          LINK_OUT)
        try:
            lst = os.lstat(target)
        except OSError:
            raise _refuse(path, "is a dangling symlink", ErrorCodes.FILEHANDLINGFAILURE, NOT_REGULAR) from None
    if not stat.S_ISREG(lst.st_mode):
        what = file_kind(lst.st_mode) + (" behind a symlink" if target != path else "")
        raise _refuse(path, f"is a {what}, not a regular file", ErrorCodes.FILEHANDLINGFAILURE, NOT_REGULAR)
    return target


def _plain_below(path: str, root: str) -> bool:
    """Whether ``path`` is a plain name directly in ``root`` (then no directory on the way can be a link).

    Anything else (a sub-directory) is resolved with ``realpath`` so a linked directory cannot lead out.
    """
    parent = os.path.dirname(os.path.abspath(path))
    return parent == os.path.abspath(root)


def read_checked(path: str, root: Optional[str] = None, limit: int = 64 * 1024 * 1024) -> bytes:
    """The bytes of a checked regular file (:func:`open_checked`), refused (1303) when larger than ``limit``."""
    with open_checked(path, root) as checked:
        if checked.size > limit:
            raise UnsafeFile(f"{path}: {checked.size} bytes, more than the {limit} it may have",
                             ErrorCodes.FILEHANDLINGFAILURE, NOT_REGULAR)
        return checked.read()


def create_exclusive(path: str, mode: int = 0o644) -> int:
    """A descriptor of a new file at ``path``: fails if anything (a link included) is there already."""
    return os.open(path, CREATE_FLAGS, mode)


def private_name(path: str, suffix: str = ".part") -> str:
    """A fresh, unguessable name next to ``path`` for a file to create with :func:`create_exclusive`."""
    directory, base = os.path.split(path)
    return os.path.join(directory, f".{base}.{os.urandom(6).hex()}{suffix}")
