"""File helpers: atomic JSON files, a file's checksum (:mod:`pilot.util.checksum`), safe joins, tails, sizes."""

from __future__ import annotations

import json
import logging
import os
import stat
from typing import Any, Iterator, Optional, Tuple

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import FileHandlingFailure, PilotException
from pilot.util.checksum import (  # noqa: F401 (also importable from here)
    checksum_of_chunks, checksums_equal, md5_hexdigest, new_md5,
)

logger = logging.getLogger(__name__)

_CHUNK = 4 * 1024 * 1024


def open_temp(directory: str, suffix: str = "") -> tuple:
    """A new, private temp file in ``directory`` for an atomic write: ``(fd, path)``.

    The pilot's own replacement for ``tempfile.mkstemp`` (same O_EXCL creation, mode 0600), so the
    pilot does not load ``tempfile`` and its dependencies for a handful of small writes.
    """
    for _ in range(100):
        tmp = os.path.join(directory, f".tmp-{os.urandom(6).hex()}{suffix}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp file name in {directory}")


def write_bytes_atomic(path: str, data: bytes, fsync: bool = False, mode: Optional[int] = None,
                       suffix: str = "") -> None:
    """Write ``data`` so that a reader never sees a half-written file: a new private temp file in the same
    directory (:func:`open_temp`), renamed over ``path``; a failure (full disk, a directory in the way)
    leaves no temp file behind. ``fsync``: on disk before the rename; ``mode``: the file's permission bits
    (default: the temp file's 0600).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = open_temp(directory, suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        remove_file(tmp)
        raise


def write_json_atomic(path: str, obj: Any, indent: Optional[int] = None) -> None:
    """Write ``obj`` as JSON so that a reader never sees a half-written file (temp file + rename)."""
    # dumps, not dump: only dumps uses the C encoder (dump encodes piece by piece in Python)
    write_bytes_atomic(path, json.dumps(obj, indent=indent, default=str).encode(), fsync=True, suffix=".json")


def write_file_atomic(path: str, text: str) -> None:
    """Write text atomically (temp file + rename)."""
    write_bytes_atomic(path, text.encode())


def remove_file(path: str) -> bool:
    """Remove a file (a partial copy, a spent request); False when it was not there or could not go."""
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def read_json(path: str, root: Optional[str] = None, limit: int = 64 * 1024 * 1024) -> Any:
    """Read a JSON file; raise FileHandlingFailure with the reason when it cannot be read.

    The file is read as a checked regular file of at most ``limit`` bytes (a FIFO or ``/dev/zero`` in
    its place cannot hang or flood the pilot); with ``root`` a symlink must stay inside that directory.
    """
    from pilot.util.safefile import read_checked

    try:
        return json.loads(read_checked(path, root, limit))
    except (OSError, ValueError, PilotException) as exc:
        raise FileHandlingFailure(f"cannot read JSON from {path}: {exc}") from exc


def calculate_checksum(path: str, algorithm: str = "adler32") -> str:
    """The checksum of a file: adler32 as 8 lower-case hex digits, or an md5 hex digest.

    The file is opened as a checked regular file (:func:`pilot.util.safefile.open_checked`): a FIFO, a
    device or a directory raises its coded error instead of blocking or reading without end.
    """
    from pilot.util.safefile import open_checked

    if algorithm.lower() not in ("adler32", "md5", "md5sum"):
        raise PilotException(f"unknown checksum type {algorithm!r}", code=ErrorCodes.UNKNOWNCHECKSUMTYPE)
    with open_checked(path) as checked:
        return checked.checksum(algorithm)


def safe_join(base: str, name: str) -> str:
    """Join a file name to a directory, refusing anything that would leave the directory."""
    if not name or "\x00" in name:
        raise PilotException(f"illegal file name {name!r}", code=ErrorCodes.BADOUTPUTFILENAME)
    if len(os.path.basename(name)) > 255:
        raise PilotException(f"file name too long ({len(name)} characters)", code=ErrorCodes.LFNTOOLONG)
    if os.path.isabs(name):
        raise PilotException(f"absolute path not allowed: {name!r}", code=ErrorCodes.BADOUTPUTFILENAME)
    base_abs = os.path.abspath(base)
    path = os.path.abspath(os.path.join(base_abs, name))
    if os.path.commonpath([base_abs, path]) != base_abs or path == base_abs:
        raise PilotException(f"file name leaves its directory: {name!r}", code=ErrorCodes.BADOUTPUTFILENAME)
    return path


def tail(path: str, nbytes: int = 2048, root: Optional[str] = None) -> str:
    """The last ``nbytes`` of a text file ('' when it does not exist or is no regular file).

    The file is opened checked: a FIFO or device in its place gives '' at once, and a symlink must stay
    inside ``root`` (by default the file's own directory, the job's work dir), so a payload cannot make
    a diagnostic carry the proxy or another file of the pilot to the server.
    """
    from pilot.util.safefile import open_checked

    try:
        with open_checked(path, os.path.dirname(os.path.abspath(path)) if root is None else root) as handle:
            start = max(0, handle.size - nbytes)
            return os.pread(handle.fd, handle.size - start, start).decode(errors="replace")
    except (OSError, PilotException):
        return ""


def tree_entries(path: str) -> Iterator[Tuple[os.DirEntry, os.stat_result]]:
    """(entry, its lstat) of everything below ``path``; links are not followed, unreadable parts are skipped.

    The one walk of a work dir the payload may be changing (disk use, looping-job scan, sizes).
    """
    todo = [path]
    while todo:
        directory = todo.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                todo.append(entry.path)
            yield entry, st


def directory_size(path: str) -> int:
    """Bytes used by the files below ``path`` (symlinks not followed)."""
    return sum(st.st_size for _entry, st in tree_entries(path) if not stat.S_ISDIR(st.st_mode))


def mkdirs(path: str, mode: int = 0o755) -> None:
    """Create a directory (and parents); a failure is MKDIR 1199."""
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
    except OSError as exc:
        raise PilotException(f"cannot create directory {path}: {exc}", code=ErrorCodes.MKDIR) from exc


def append_line(path: str, line: str) -> None:
    """Append one line to a text file (created if missing; never through a symlink placed at its name)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "a") as handle:
        handle.write(line.rstrip("\n") + "\n")
