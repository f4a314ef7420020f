"""The ``xrdcp`` copytool: ``xrdcp -np [-f] --cksum adler32:print SRC DST`` for root:// URLs.

Stage-in overwrites its own work dir file (``-f``); stage-out never overwrites storage (no ``-f``): when
the destination exists, its adler32 (``xrdfs query checksum``) decides, the same is a success and a
different one 1221 FILEEXISTS (:func:`pilot.copytool.common.settle_existing`).

xrdcp prints ``adler32: <value> <url> <size>`` for the written file; the value goes to
``fspec.remote_checksum`` and the Data API compares it with the job's (stage-in) or the local
(stage-out) checksum. Replicas come from Rucio (``require_replicas``), else from the storage's read
protocols. Connection retries are kept short (``XRD_CONNECTIONRETRY``/``XRD_CONNECTIONWINDOW``, unless
set in the environment) so that a stopped server is reported quickly as a service error.
``copy_in_bulk`` copies many files with one ``xrdcp --infiles LIST --parallel N DIR/`` (one process instead
of one per file, which is what costs the time with small files); the per-file checksum lines tell which
files arrived.
"""

from __future__ import annotations

import logging
import os
import re
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
allowed_schemas = ["root"]
check_availablespace = True

_CHECKSUM_LINE = re.compile(r"^(adler32|md5):\s*([0-9a-fA-F]+)\s+(\S+)", re.MULTILINE)
MAX_PARALLEL = 16  # files one bulk xrdcp copies at the same time
XRD_ENV = {"XRD_CONNECTIONRETRY": "1", "XRD_CONNECTIONWINDOW": "10"}  # the Data API retries


def is_valid_for_copy_in(files: list) -> bool:
    """Every file needs an LFN."""
    return all(f.lfn for f in files)


def is_valid_for_copy_out(files: list) -> bool:
    """Every file needs an LFN."""
    return all(f.lfn for f in files)


def parse_checksum(output: str) -> dict:
    """``{'adler32': value}`` from xrdcp's ``--cksum adler32:print`` line ({} when absent)."""
    match = _CHECKSUM_LINE.search(output or "")
    return {match.group(1).lower(): match.group(2).lower().zfill(8)} if match else {}


def _env() -> dict:
    return {k: v for k, v in XRD_ENV.items() if k not in os.environ}


def remote_adler32(url: str, setup: str = "") -> str:
    """The adler32 XRootD reports for the file at ``url`` ('' when it cannot tell)."""
    match = re.match(r"^(root://[^/]+)(/.*)$", url)
    if not match:
        return ""
    try:
        output = run_tool(["xrdfs", match.group(1), "query", "checksum", match.group(2)], 60, setup, _env(),
                          is_stagein=False, quiet=True)
    except PilotException:
        return ""
    found = re.search(r"adler32\s+([0-9a-fA-F]+)", output)
    return found.group(1).lower().zfill(8) if found else ""


def copy_in(files: list, **kwargs: Any) -> list:
    """Download each file from its TURL into the work dir."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    setup = opts.setup("xrdcp")
    stop = opts.stop_event  # set by TransferHandle.cancel(): the running xrdcp is killed
    for fspec in files:
        try:
            if not fspec.turl:
                raise PilotException(f"no replica for {fspec.scope}:{fspec.lfn}", code=ErrorCodes.NOREPLICAS,
                                     state="NO_REPLICA", kind="missing")
            dst = local_file_path(fspec, opts.workdir)
            output = run_tool(["xrdcp", "-np", "-f", "--cksum", "adler32:print", fspec.turl, dst],
                              get_timeout(fspec.filesize), setup, _env(), is_stagein=True, stop_event=stop)
            fspec.remote_checksum = parse_checksum(output)
            fspec.status, fspec.status_code = "transferred", 0
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
    return files


def copy_in_bulk(files: list, **kwargs: Any) -> list:
    """Download many files with one ``xrdcp --infiles LIST --parallel N DIR/`` per destination directory.

    Files whose TURL does not end in their LFN (signed URLs, non-deterministic paths) are left to the
    per-file path, as are files xrdcp did not report (status stays None; see :mod:`pilot.api.bulk`).
    ``xrootd_env`` (a dict) is added to the command's environment (the rucio tool's security settings).
    """
    opts = CopytoolOptions.from_kwargs(kwargs)
    setup = opts.setup("xrdcp")
    env = {**_env(), **opts.xrootd_env}
    groups: dict = {}
    for fspec in files:
        dst = local_file_path(fspec, opts.workdir)
        if fspec.turl and "?" not in fspec.turl and fspec.turl.rsplit("/", 1)[-1] == fspec.lfn:
            groups.setdefault(os.path.dirname(dst), []).append(fspec)
    for directory, group in groups.items():
        parallel = max(1, min(len(group), opts.max_workers, MAX_PARALLEL))
        listing = os.path.join(directory, f".xrdcp-infiles-{os.getpid()}-{id(group)}")
        with open(listing, "w") as handle:
            handle.write("".join(f"{f.turl}\n" for f in group))
        timeout = get_timeout(sum(int(f.filesize or 0) for f in group)) + len(group)
        try:
            output = run_tool(["xrdcp", "-np", "-f", "--parallel", str(parallel), "--cksum", "adler32:print",
                               "--infiles", listing, directory + "/"], timeout, setup, env, is_stagein=True,
                              stop_event=opts.stop_event, check=False)
        finally:
            os.unlink(listing)
        arrived = parse_bulk_checksums(output)
        for fspec in group:
            checksum = arrived.get(fspec.lfn)
            if checksum:
                fspec.remote_checksum = checksum
                fspec.status, fspec.status_code = "transferred", 0
    return files


def parse_bulk_checksums(output: str) -> dict:
    """``{file name: {'adler32': value}}`` from the ``adler32: <value> <target> <size>`` lines of a bulk copy."""
    found = {}
    for match in _CHECKSUM_LINE.finditer(output or ""):
        found[match.group(3).rstrip("/").rsplit("/", 1)[-1]] = {match.group(1).lower(): match.group(2).lower().zfill(8)}
    return found


def copy_out(files: list, **kwargs: Any) -> list:
    """Upload each file to its SURL; the printed checksum is the storage's."""
    opts = CopytoolOptions.from_kwargs(kwargs)
    setup = opts.setup("xrdcp")
    stop = opts.stop_event  # set by TransferHandle.cancel(): the running xrdcp is killed
    for fspec in files:
        try:
            if not fspec.surl:
                raise PilotException(f"no destination for {fspec.lfn}", code=ErrorCodes.NOSTORAGEPROTOCOL,
                                     state="NO_PROTOCOL", kind="config")
            src = local_file_path(fspec, opts.workdir)
            try:  # without -f: an existing replica is never overwritten
                output = run_tool(["xrdcp", "-np", "--cksum", "adler32:print", src, fspec.surl],
                                  get_timeout(fspec.filesize), setup, _env(), is_stagein=False, stop_event=stop)
            except PilotException as exc:
                if exc.kwargs.get("kind") != EXISTS:
                    raise
                settle_existing(fspec, fspec.surl, remote_adler32(fspec.surl, setup))
                continue
            fspec.remote_checksum = parse_checksum(output)
            fspec.turl = fspec.surl
            fspec.status, fspec.status_code = "transferred", 0
        except PilotException as exc:
            mark_failed(fspec, exc)
            raise
    return files
