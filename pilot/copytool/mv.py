"""The ``mv`` copytool: files on a local or shared file system (copy, symlink or move).

Stage-in source, first found: the file's ``turl`` (a ``file://`` URL or an absolute path, set by the
Data API from the storage's read protocol or from ``--input-dir``), ``<input_dir>/<lfn>``, then
``<parent of the work dir>/<lfn>`` (aCT places inputs next to the pilot). The file lands in
``fspec.workdir`` (else the ``workdir`` argument).

Stage-out destination: ``<output_dir>/<lfn>`` when ``output_dir`` is set; else the ``file://`` SURL
(directories are created); else (aCT/ARC) the file goes to the parent of the work dir and a line
``<lfn> <surl>`` is appended to the parent's ``output.list`` for ARC to upload.

Mode: ``copy_type`` = ``copy`` (default), ``symlink`` (stage-in only) or ``move``, taken from the keyword argument
``copy_type`` (or ``mv_mode``), else the queue's ``copytools['mv']['copy_type']``, else a catchall entry
``mv_copy_type=<mode>``. Copy is the default because it never removes the source and works inside
containers that do not see the source's path; symlink is for shared read-only input areas; move is
for aCT where the pilot owns the source. A copy goes to a temporary name and is renamed into place,
so an existing destination is replaced atomically; it keeps the source's mode bits (as ``cp`` does)
and moves the bytes in-kernel in 64 MB steps, looking at the transfer's stop event between steps. A
link to a free name, or a move within one file system, is one system call; a link that must replace
something goes through a temporary name too, and so does a move that cannot be one rename (across file
systems): it copies, and removes the source only once the copy is in place, so a failed move leaves
the source where it was. In symlink mode the Data API runs the files in its own thread rather than a
pool (``parallel_transfers``): a link costs less than handing it to a thread.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import threading
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional, Union

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException, StageInFailure, StageOutFailure
from pilot.copytool.common import (cancelled_error, is_local_url, local_file_path, mark_failed, settle_existing,
                                   transfer_error, url_to_path)
from pilot.copytool.options import CopytoolOptions
from pilot.util.filehandling import calculate_checksum, remove_file, safe_join
from pilot.util.safefile import create_exclusive, open_checked, private_name

if TYPE_CHECKING:
    from pilot.info.filespec import FileSpec

logger = logging.getLogger(__name__)

require_replicas = False
require_input_protocols = True
require_protocols = True
protocols_optional = True  # without storage data the file still goes to output_dir / output.list
allowed_schemas = ["file", ""]
check_availablespace = True
send_traces = False  # the CE moves the files on; no replica is accessed, so nothing goes to Rucio's traces

MODES = ("copy", "symlink", "move")


def is_valid_for_copy_in(files: list) -> bool:
    """Every file needs an LFN."""
    return all(f.lfn for f in files)


def is_valid_for_copy_out(files: list) -> bool:
    """Every file needs an LFN."""
    return all(f.lfn for f in files)


def get_mode(kwargs: Union[CopytoolOptions, Mapping[str, Any]], is_stagein: bool = True) -> str:
    """The transfer mode (copy, symlink or move).

    As in Pilot 2 and 3, an explicit ``copy_type`` of ``''`` or ``None`` raises StageInFailure (1099)
    or StageOutFailure (1137), and ``copy_type='symlink'`` is refused for stage-out (a link into the
    work dir would point at nothing once the job's directory is removed). A queue-level symlink
    setting (for shared read-only input areas) copies outputs instead.
    """
    opts = CopytoolOptions.of(kwargs)
    failure = StageInFailure if is_stagein else StageOutFailure
    if opts.copy_type == "" and not opts.mv_mode:  # given, but empty or None
        raise failure("mv copytool: incorrect copy_type '' (use copy, symlink or move)")
    explicit = str(opts.copy_type or opts.mv_mode).lower()
    if not is_stagein and explicit in ("symlink", "ln", "link"):
        raise StageOutFailure("mv copytool: symlink is not a stage-out method (use copy or move)")
    mode = str(opts.mv_mode or opts.setting("mv", "copy_type", "copy")).lower()
    aliases = {"cp": "copy", "ln": "symlink", "link": "symlink", "mv": "move"}
    mode = aliases.get(mode, mode)
    if mode not in MODES:
        raise PilotException(f"mv copytool: unknown copy_type {mode!r} (use {', '.join(MODES)})",
                             code=ErrorCodes.BADQUEUECONFIGURATION)
    if mode == "symlink" and not is_stagein:
        logger.info("mv copytool: the queue's symlink mode is for inputs; outputs are copied")
        return "copy"
    return mode


def parallel_transfers(kwargs: Mapping[str, Any], is_stagein: bool = True) -> bool:
    """Whether transfers in the configured mode are worth a pool thread each (see the Data API).

    Not in symlink mode: a link is one metadata operation in the work dir (whose directory lock
    serialises such operations anyway), and the Data API checks a linked input by size only. A copy
    moves bytes; a moved file is then checksummed (and a move may cross file systems, which copies),
    so both keep their threads. A bad ``copy_type`` keeps them too: each transfer reports it.
    """
    try:
        return get_mode(kwargs, is_stagein) != "symlink"
    except PilotException:
        return True


def copy_in(files: list, **kwargs: Any) -> list:
    """Bring each input file into its work dir; raise PilotException on the first failure."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    mode = get_mode(opts)
    for fspec in files:
        try:
            dst = local_file_path(fspec, opts.workdir)
            src = _find_source(fspec, dst, opts)
            _place(src, dst, mode, stop=opts.stop_event)
            fspec.turl = fspec.turl or f"file://{src}"
            fspec.status_code = 0
            fspec.status = "transferred"
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
    return files


def copy_out(files: list, **kwargs: Any) -> list:
    """Put each output file at its destination; raise PilotException on the first failure."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    mode = get_mode(opts, is_stagein=False)
    output_dir = opts.output_dir
    for fspec in files:
        try:
            src = local_file_path(fspec, opts.workdir)
            if not os.path.isfile(src):
                raise PilotException(f"output file does not exist: {src}", code=ErrorCodes.NOSUCHFILE, state="NO_FILE",
                                     kind="missing")
            act_line = ""
            if output_dir:
                dst = safe_join(output_dir, fspec.lfn)
                fspec.turl = f"file://{dst}"
            elif is_local_url(fspec.surl):
                dst = url_to_path(fspec.surl)
                fspec.turl = fspec.surl
            else:
                dst, act_line = _act_destination(fspec, src, opts.ddmconf)
            if os.path.lexists(dst):  # storage is never overwritten: the same file is a success, else 1221
                if not fspec.checksum.get("adler32"):
                    fspec.checksum["adler32"] = calculate_checksum(src, "adler32")
                settle_existing(fspec, dst, _local_adler32(dst))
                continue
            _place_new(src, dst, mode, stop=opts.stop_event)
            if act_line:  # listed for ARC only once the file is there
                _append_output_list(os.path.dirname(dst), act_line)
            if os.path.isfile(dst) and not os.path.islink(dst):
                fspec.remote_checksum = {"adler32": calculate_checksum(dst, "adler32")}
            fspec.status_code = 0
            fspec.status = "transferred"
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
    return files


def _source_candidates(fspec: FileSpec, dst: str, opts: CopytoolOptions) -> Iterator[str]:
    """Where an input file may be, in order (made one at a time: the first usually exists)."""
    if is_local_url(fspec.turl):
        yield url_to_path(fspec.turl)
    if opts.input_dir:
        yield safe_join(opts.input_dir, fspec.lfn)
    parent = os.path.dirname(os.path.dirname(dst))
    if parent:
        yield safe_join(parent, fspec.lfn)


def _find_source(fspec: FileSpec, dst: str, opts: CopytoolOptions) -> str:
    """The first existing source path of an input file (``dst`` is absolute)."""
    for path in _source_candidates(fspec, dst, opts):
        if os.path.abspath(path) != dst and os.path.isfile(path):
            return path
    tried = ", ".join(_source_candidates(fspec, dst, opts)) or "no location"
    raise transfer_error(f"No such file or directory: {fspec.lfn} (tried {tried})", is_stagein=True)


def _act_destination(fspec: FileSpec, src: str, ddmconf: Mapping[str, Any]) -> tuple:
    """aCT mode: ``(destination next to the work dir, its output.list line for ARC)``.

    The line is ``<lfn> <ARC URL>``: the SURL with ARC's options as Pilot 2 writes them (the space
    token after the port, ``:checksumtype=<type>:checksumvalue=<value>`` at the end); the SURL stays
    the file's turl, so the final update's xml names where ARC puts the file.
    """
    parent = os.path.dirname(os.path.dirname(src))
    dst = safe_join(parent, fspec.lfn)
    fspec.turl = fspec.surl or f"file://{dst}"
    return dst, f"{fspec.lfn} {arc_url(fspec, ddmconf)}".rstrip()


def _append_output_list(directory: str, line: str) -> None:
    """Add one line to ARC's ``output.list`` in ``directory``."""
    from pilot.util.filehandling import append_line

    try:  # never through a link the payload may have placed at the name
        append_line(os.path.join(directory, "output.list"), line)
    except OSError as exc:
        raise transfer_error(str(exc), is_stagein=False) from None


def arc_url(fspec: FileSpec, ddmconf: Mapping[str, Any]) -> str:
    """The ARC upload URL of an output: its SURL with the space token and checksum options."""
    url = fspec.surl or ""
    if not url:
        return ""
    token = getattr((ddmconf or {}).get(fspec.ddmendpoint), "token", "") or ""
    if token:
        url = re.sub(r"(:\d+)/", rf"\1;autodir=no;spacetoken={token}/", url, count=1)
    checksum = next(((k, v) for k, v in (fspec.checksum or {}).items() if v), None)
    if checksum:
        url += f":checksumtype={checksum[0]}:checksumvalue={checksum[1]}"
    return url


#: bytes copied in-kernel between two looks at the stop event
COPY_STEP = 64 * 1024 * 1024


def _copy_data(src: str, dst: str, stop: Optional[threading.Event] = None, is_stagein: bool = True) -> None:
    """Copy ``src`` to a new ``dst`` with its mode bits, as cp does; a set ``stop`` ends it between steps.

    The bytes move in-kernel (``os.sendfile``) in ``COPY_STEP`` pieces, so a cancelled transfer of a
    large file stops within one step instead of at the end of the file.
    """
    with open_checked(src) as fin, os.fdopen(create_exclusive(dst, 0o600), "wb") as fout:
        size = fin.size  # a source that grew meanwhile is copied as far as fstat saw it
        offset = 0
        while offset < size:
            if stop is not None and stop.is_set():
                raise cancelled_error(f"copy of {src} stopped after {offset} of {size} bytes", is_stagein)
            try:
                sent = os.sendfile(fout.fileno(), fin.fileno(), offset, min(COPY_STEP, size - offset))
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP) or offset:
                    raise
                shutil.copyfileobj(fin, fout, COPY_STEP)  # a file system without sendfile
                break
            if sent == 0:
                break
            offset += sent
    shutil.copymode(src, dst)


def _in_one_step(src: str, dst: str, mode: str) -> bool:
    """Symlink ``src`` to a free ``dst``, or rename it there, in one system call; False when that fails.

    A failure changes nothing (the name is taken by a link or a directory, the file systems differ, the
    directory is missing, ...): the caller then goes through a temporary name, which replaces what is
    there, moves across file systems and reports the error.
    """
    try:
        if mode == "symlink":
            os.symlink(os.path.abspath(src), dst)
        else:
            os.rename(src, dst)
    except OSError:
        return False
    return True


def _place(src: str, dst: str, mode: str, makedirs: bool = False, stop: Optional[threading.Event] = None) -> None:
    """Copy, symlink or move ``src`` to ``dst`` (replacing ``dst``); OS errors become coded exceptions.

    A move that cannot be one rename (another file system, a name held by a directory) copies to the
    temporary name, puts the copy in place and only then removes the source: until the file sits at
    ``dst`` the source is untouched, so a failure never costs the job its file.
    """
    is_stagein = not makedirs
    tmp = private_name(dst)
    try:
        if makedirs:
            os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
        if mode == "copy" or not _in_one_step(src, dst, mode):
            if not makedirs and not os.path.isdir(os.path.dirname(dst)):
                raise PilotException(f"work dir does not exist: {os.path.dirname(dst)}", code=ErrorCodes.MKDIR,
                                     state="COPY_ERROR")
            if mode == "symlink":
                os.symlink(os.path.abspath(src), tmp)
            else:
                _copy_data(src, tmp, stop, is_stagein)
                if mode == "move":
                    shutil.copystat(src, tmp)  # a move keeps the times, as mv does
            os.replace(tmp, dst)
            if mode == "move":
                _drop_source(src, dst)
    except PilotException as exc:
        note = _clear_temporary(tmp, src, mode)
        if note:
            exc.diag = f"{exc.diag}; {note}"
        raise
    except OSError as exc:
        note = _clear_temporary(tmp, src, mode)
        msg = f"{exc.strerror or exc}: {exc.filename2 or exc.filename or src}"
        raise transfer_error(f"{msg}; {note}" if note else msg, is_stagein) from None
    logger.info("%s %s -> %s", mode, src, dst)


def _local_adler32(path: str) -> str:
    """The adler32 of an existing destination file ('' when it is not a regular file or cannot be read)."""
    try:
        return calculate_checksum(path, "adler32")
    except PilotException:
        return ""


def _place_new(src: str, dst: str, mode: str, stop: Optional[threading.Event] = None) -> None:
    """Stage-out: put ``src`` at ``dst`` only if nothing is there (never replacing a file on storage).

    The copy goes to a fresh private name (``O_EXCL | O_NOFOLLOW``) and is hard-linked to ``dst``
    (``link`` fails when the name is taken, atomically); a move links the source itself when both are on
    one file system; a symlink is made at ``dst`` directly (``symlink`` never replaces either). A taken
    name found at the last step is settled like one found before (same file: success, else 1221).
    """
    try:
        os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
        if mode == "symlink":
            os.symlink(os.path.abspath(src), dst)
        elif mode == "move" and _link_new(src, dst):
            _drop_source(src, dst)
        else:
            tmp = private_name(dst)
            try:
                _copy_data(src, tmp, stop, is_stagein=False)
                if mode == "move":
                    shutil.copystat(src, tmp)
                if not _link_new(tmp, dst):  # a file system without hard links: a rename after the check
                    if os.path.lexists(dst):
                        raise FileExistsError(errno.EEXIST, "File exists", dst)
                    os.rename(tmp, dst)
            finally:
                remove_file(tmp)
            if mode == "move":
                _drop_source(src, dst)
    except FileExistsError:
        raise PilotException(f"{dst} appeared while the file was copied: left untouched",
                             code=ErrorCodes.FILEEXISTS, state="FILE_EXISTS", kind="exists") from None
    except PilotException:
        raise
    except OSError as exc:
        raise transfer_error(f"{exc.strerror or exc}: {exc.filename2 or exc.filename or src}", False) from None
    logger.info("%s %s -> %s", mode, src, dst)


def _link_new(src: str, dst: str) -> bool:
    """Hard-link ``src`` as the new name ``dst``; False when the file system cannot (other device, no links).

    ``FileExistsError`` (the name is taken) propagates.
    """
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            return False
        raise
    return True


def _drop_source(src: str, dst: str) -> None:
    """The last step of a move done as a copy: remove the source (the file is already at ``dst``)."""
    try:
        os.unlink(src)
    except OSError as exc:
        logger.warning("moved %s to %s as a copy but could not remove the source: %s", src, dst, exc)


def _clear_temporary(tmp: str, src: str, mode: str) -> str:
    """Remove what a failed placement left at ``tmp``; return a note for the error when it cannot go.

    A copy or a link at ``tmp`` is expendable. In move mode it is expendable only while the source is
    still there: a file at ``tmp`` without its source is the job's only copy, so it goes back to the
    source's path, or stays where it is when even that fails (the note then says where it is).
    """
    if not os.path.lexists(tmp):
        return ""
    if mode != "move" or os.path.lexists(src):
        remove_file(tmp)
        return ""
    try:
        os.rename(tmp, src)
    except OSError as exc:
        logger.error("cannot put %s back at %s (%s): the file is kept at %s", tmp, src, exc, tmp)
        return f"the file is kept at {tmp} (it could not be put back at {src}: {exc.strerror or exc})"
    logger.warning("placement failed: %s is back at %s", os.path.basename(src), src)
    return ""
