"""The ``lsm`` copytool: the site's Local Site Mover commands ``lsm-get`` and ``lsm-put``.

Contract (the site provides the commands; they are not part of any package)::

    lsm-get [-t <space token>] [--size <bytes>] [--checksum adler32:<value>] [--guid <guid>] <source> <destination>
    lsm-put [-t <space token>] [--size <bytes>] [--checksum adler32:<value>] [--guid <guid>] <source> <destination>

Exit 0 means the file arrived with the given size and checksum; anything else is a failure whose
output is classified like every other tool's. The source of a stage-in is the replica chosen by the
Data API (storage read protocol or ``--input-dir``); the destination of a stage-out is the SURL.

Storage is never overwritten by the pilot: a local (``file://``) destination that exists is settled
before ``lsm-put`` runs (same adler32: success, else 1221 FILEEXISTS); for a remote one the site's
``lsm-put`` must refuse an existing file (its "File exists" output is classified 1221).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool.common import (get_timeout, is_local_url, local_file_path, mark_failed,
                                   run_tool, settle_existing, url_to_path)
from pilot.copytool.options import CopytoolOptions
from pilot.util.filehandling import calculate_checksum

if TYPE_CHECKING:
    from pilot.info.filespec import FileSpec

logger = logging.getLogger(__name__)

require_replicas = False
require_input_protocols = True
require_protocols = True
allowed_schemas = None
check_availablespace = True


def is_valid_for_copy_in(files: list) -> bool:
    """Every file needs an LFN."""
    return all(f.lfn for f in files)


def is_valid_for_copy_out(files: list) -> bool:
    """Every file needs an LFN."""
    return all(f.lfn for f in files)


def _options(fspec: FileSpec) -> list:
    opts = []
    if fspec.storage_token:
        opts += ["-t", fspec.storage_token]
    if fspec.filesize:
        opts += ["--size", str(int(fspec.filesize))]
    if fspec.checksum.get("adler32"):
        opts += ["--checksum", f"adler32:{fspec.checksum['adler32']}"]
    if fspec.guid:
        opts += ["--guid", fspec.guid]
    return opts


def _local_adler32(path: str) -> str:
    try:
        return calculate_checksum(path, "adler32")
    except PilotException:
        return ""


def copy_in(files: list, **kwargs: Any) -> list:
    """``lsm-get`` each file into the work dir."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    setup = opts.setup("lsm")
    for fspec in files:
        try:
            if not fspec.turl:
                raise PilotException(f"no replica for {fspec.lfn}", code=ErrorCodes.NOREPLICAS, state="NO_REPLICA",
                                     kind="missing")
            dst = local_file_path(fspec, opts.workdir)
            run_tool(["lsm-get"] + _options(fspec) + [fspec.turl, dst], get_timeout(fspec.filesize), setup,
                     is_stagein=True, stop_event=opts.stop_event)
            fspec.status, fspec.status_code = "transferred", 0
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
    return files


def copy_out(files: list, **kwargs: Any) -> list:
    """``lsm-put`` each file to its SURL."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    setup = opts.setup("lsm")
    for fspec in files:
        try:
            if not fspec.surl:
                raise PilotException(f"no destination for {fspec.lfn}", code=ErrorCodes.NOSTORAGEPROTOCOL,
                                     state="NO_PROTOCOL", kind="config")
            src = local_file_path(fspec, opts.workdir)
            if is_local_url(fspec.surl) and os.path.lexists(url_to_path(fspec.surl)):
                settle_existing(fspec, fspec.surl, _local_adler32(url_to_path(fspec.surl)))
                continue
            run_tool(["lsm-put"] + _options(fspec) + [src, fspec.surl], get_timeout(fspec.filesize), setup,
                     is_stagein=False, stop_event=opts.stop_event)
            fspec.turl = fspec.surl
            fspec.status, fspec.status_code = "transferred", 0
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
    return files
