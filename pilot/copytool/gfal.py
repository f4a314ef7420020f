"""The ``gfal`` copytool (also ``gfalcopy``): ``gfal-copy --verbose [-f] -t <timeout> -K adler32:<value>``.

``-f`` only for stage-in (the work dir file); stage-out never overwrites storage: an existing destination
is compared by ``gfal-sum`` (same adler32: success, else 1221 FILEEXISTS).

gfal2 checks the checksum on both ends itself: on stage-in against the job's adler32, on stage-out
against the adler32 computed locally before the upload. A storage that cannot compute checksums
(nginx WebDAV) makes gfal fail with error 38, classified 1242 CHKSUM_NOTSUP. ``/usr/bin/gfal-*`` are shell
wrappers that need a Python with the gfal2 bindings: ``GFAL_PYTHONBIN`` is set to /usr/bin/python3 when
unset and that interpreter exists.

Many inputs (the Data API's bulk path, :mod:`pilot.api.bulk`) go through one ``gfal-copy --from-file``
per destination directory instead of one gfal-copy (a Python start-up each) per file; gfal then only
compares source and destination checksums, and the Data API checks each file against the job's adler32.
gfal stops a list at its first failure: files it did not deliver are left to the per-file path.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool.common import (EXISTS, get_timeout, local_file_path, mark_failed, run_tool,
                                   settle_existing)
from pilot.copytool.options import CopytoolOptions

logger = logging.getLogger(__name__)

require_replicas = True
require_input_protocols = True
require_protocols = True
allowed_schemas = ["root", "davs", "https", "srm", "gsiftp", "file"]
check_availablespace = True


def is_valid_for_copy_in(files: list) -> bool:
    """Every file needs an LFN."""
    return all(f.lfn for f in files)


def is_valid_for_copy_out(files: list) -> bool:
    """Every file needs an LFN."""
    return all(f.lfn for f in files)


def _env() -> dict:
    if not os.environ.get("GFAL_PYTHONBIN") and os.path.exists("/usr/bin/python3"):
        return {"GFAL_PYTHONBIN": "/usr/bin/python3"}
    return {}


def _command(src: str, dst: str, timeout: int, checksum: str, overwrite: bool = True) -> list:
    # stage-out: never -f (storage is not overwritten), -p (parent directories, which file:// needs)
    cmd = ["gfal-copy", "--verbose"] + (["-f"] if overwrite else ["-p"]) + ["-t", str(timeout)]
    cmd += ["-K", f"adler32:{checksum}" if checksum else "adler32"]
    return cmd + [src, dst]


def remote_adler32(url: str, setup: str = "") -> str:
    """The adler32 the storage reports for ``url`` (``gfal-sum``; '' when it cannot tell)."""
    try:
        output = run_tool(["gfal-sum", url, "ADLER32"], 60, setup, _env(), is_stagein=False, quiet=True)
    except PilotException:
        return ""
    parts = output.split()
    value = parts[-1] if len(parts) >= 2 else ""
    return value.lower().zfill(8) if all(c in "0123456789abcdefABCDEF" for c in value) and value else ""


def copy_in(files: list, **kwargs: Any) -> list:
    """Download each file from its TURL (checksum checked by gfal against the job's adler32)."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    setup = opts.setup("gfal", "gfalcopy")
    stop = opts.stop_event  # set by TransferHandle.cancel(): the running gfal-copy is killed
    for fspec in files:
        try:
            if not fspec.turl:
                raise PilotException(f"no replica for {fspec.scope}:{fspec.lfn}", code=ErrorCodes.NOREPLICAS,
                                     state="NO_REPLICA", kind="missing")
            dst = "file://" + os.path.abspath(local_file_path(fspec, opts.workdir))
            timeout = get_timeout(fspec.filesize)
            run_tool(_command(fspec.turl, dst, timeout, fspec.checksum.get("adler32", "")), timeout + 60, setup,
                     _env(), is_stagein=True, stop_event=stop)
            fspec.status, fspec.status_code = "transferred", 0
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
    return files


def copy_in_bulk(files: list, **kwargs: Any) -> list:
    """Download many files with one ``gfal-copy --from-file LIST file://DIR/`` per destination directory.

    A file counts as delivered when it is in place with its expected size (gfal compared its checksum
    with the source's on the way); the Data API then verifies it against the job's adler32. Files
    whose TURL does not end in their LFN, and files not delivered, are left (status None).
    """
    opts = CopytoolOptions.from_kwargs(kwargs)
    setup = opts.setup("gfal", "gfalcopy")
    groups: dict = {}
    for fspec in files:
        dst = local_file_path(fspec, opts.workdir)
        if fspec.turl and "?" not in fspec.turl and fspec.turl.rsplit("/", 1)[-1] == fspec.lfn:
            groups.setdefault(os.path.dirname(os.path.abspath(dst)), []).append(fspec)
    for directory, group in groups.items():
        listing = os.path.join(directory, f".gfal-from-file-{os.getpid()}-{id(group)}")
        with open(listing, "w") as handle:
            handle.write("".join(f"{f.turl}\n" for f in group))
        timeout = get_timeout(sum(int(f.filesize or 0) for f in group)) + 10 * len(group)
        cmd = ["gfal-copy", "--verbose", "-f", "-t", str(timeout), "-K", "adler32", "--from-file", listing,
               f"file://{directory}/"]
        try:
            run_tool(cmd, timeout + 60, setup, _env(), is_stagein=True, stop_event=opts.stop_event,
                     check=False)
        finally:
            os.unlink(listing)
        for fspec in group:
            path = os.path.join(directory, fspec.lfn)
            if os.path.isfile(path) and (not fspec.filesize or os.path.getsize(path) == int(fspec.filesize)):
                fspec.status, fspec.status_code = "transferred", 0
    return files


def copy_out(files: list, **kwargs: Any) -> list:
    """Upload each file to its SURL (checksum checked by gfal against the local adler32)."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    setup = opts.setup("gfal", "gfalcopy")
    stop = opts.stop_event  # set by TransferHandle.cancel(): the running gfal-copy is killed
    for fspec in files:
        try:
            if not fspec.surl:
                raise PilotException(f"no destination for {fspec.lfn}", code=ErrorCodes.NOSTORAGEPROTOCOL,
                                     state="NO_PROTOCOL", kind="config")
            src = "file://" + os.path.abspath(local_file_path(fspec, opts.workdir))
            timeout = get_timeout(fspec.filesize)
            try:  # without -f: an existing replica is never overwritten
                run_tool(_command(src, fspec.surl, timeout, fspec.checksum.get("adler32", ""), overwrite=False),
                         timeout + 60, setup, _env(), is_stagein=False, stop_event=stop)
            except PilotException as exc:
                if exc.kwargs.get("kind") != EXISTS:
                    raise
                settle_existing(fspec, fspec.surl, remote_adler32(fspec.surl, setup))
                continue
            fspec.turl = fspec.surl
            fspec.status, fspec.status_code = "transferred", 0
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
    return files
