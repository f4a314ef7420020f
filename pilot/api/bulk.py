"""Bulk stage-in: one tool call for many files, the per-file path for whatever it leaves behind.

A copytool that defines ``copy_in_bulk(files, **kwargs)`` can move many files in one command or one
API call (``xrdcp --infiles`` with ``--parallel``, Rucio ``download_pfns`` with its threads); that avoids
starting a process and a client per file, which dominates the time of small files. The contract:

* each file arrives with ``turl``/``ddmendpoint`` set to its first replica;
* the tool sets ``status = 'transferred'`` (and ``remote_checksum`` when it has one) on the files that
  arrived and leaves every other file's ``status`` as it was (``None``); it raises only when nothing
  could be tried at all (tool missing, cancelled, timed out);
* the Data API then verifies each transferred file and sends its trace; files that did not arrive, or
  failed the check, go through the ordinary per-file path (retries, other replicas, classified errors),
  which skips a replica whose copy was corrupt.

Bulk is used when the tool has ``copy_in_bulk``, ``use_bulk`` is not False and at least
``BULK_MIN_FILES`` files are waiting (``use_bulk=True`` forces it for any number). Only files up to
``BULK_MAX_FILESIZE`` go into the bulk call unless ``use_bulk=True``: a large file gains nothing from
sharing one command, and moves faster as its own stream through the pool (5 x 200 MB with xrdcp:
one process per file with its in-flight checksum was ~7 % faster than ``xrdcp --parallel 5``).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import TYPE_CHECKING, Any, Optional

from pilot.common.exception import PilotException
from pilot.copytool.common import CHECKSUM, transfers_in_threads
from pilot.copytool.middleware import transfers_in

if TYPE_CHECKING:
    from pilot.info.filespec import FileSpec

logger = logging.getLogger(__name__)

BULK_MIN_FILES = 2
#: files larger than this go through the per-file path (unless the caller forces bulk)
BULK_MAX_FILESIZE = 32 * 1024 * 1024


def split_for_bulk(files: list, use_bulk: Optional[bool]) -> tuple:
    """``(for the bulk call, for the per-file path)``: the small files, and the large ones."""
    if use_bulk:
        return list(files), []
    small: list = []
    large: list = []
    for fspec in files:
        (small if not fspec.filesize or int(fspec.filesize) <= BULK_MAX_FILESIZE else large).append(fspec)
    return small, large


def wants_bulk(module: ModuleType, files: list, use_bulk: Optional[bool]) -> bool:
    """Whether to try ``module.copy_in_bulk`` for ``files``."""
    if use_bulk is False or not hasattr(module, "copy_in_bulk") or not files:
        return False
    return bool(use_bulk) or len(files) >= BULK_MIN_FILES


def bulk_stage_in(client: Any, module: ModuleType, name: str, files: list, kwargs: dict) -> tuple:
    """Try ``files`` in one bulk call; returns ``(left, corrupt)``: the files still to transfer one by one,
    and ``{id(fspec): (pfn, PilotException)}`` for replicas that delivered corrupt data (not tried again)."""
    stop = kwargs.get("stop_event")
    ready, left, traces = [], [], {}
    for fspec in files:
        alternatives = client.alternatives(fspec, kwargs)
        if not alternatives:
            left.append(fspec)
            continue
        client.use_alternative(fspec, alternatives[0], module, name, kwargs)
        if fspec.status == "failed":  # nothing usable in that replica: the per-file path decides
            fspec.status, fspec.status_code = None, 0
            left.append(fspec)
            continue
        traces[id(fspec)] = client.new_trace(fspec, name, kwargs)
        traces[id(fspec)].update(transferStart=time.time())
        ready.append(fspec)
    if not ready:
        return files, {}
    logger.info("bulk stage-in of %d file(s) with %s", len(ready), name)
    try:
        with transfers_in(getattr(client, "queuedata", None), kwargs.get("workdir") or ready[0].workdir or ""):
            module.copy_in_bulk(ready, **kwargs)
    except PilotException as exc:
        logger.warning("bulk stage-in with %s failed (%s): falling back to one file at a time", name, exc.diag)
        for fspec in ready:
            if fspec.status != "transferred":
                fspec.status, fspec.status_code = None, 0
    corrupt: dict = {}
    arrived = []
    for fspec in ready:
        if fspec.status == "transferred":
            arrived.append(fspec)
        else:
            fspec.status, fspec.status_code, fspec.transfer_error = None, 0, ""
            left.append(fspec)

    def check(fspec: FileSpec) -> bool:
        """Verify one arrived file and send its trace; False (and back to the per-file path) when bad."""
        trace = traces[id(fspec)]
        trace.update(validateStart=time.time())
        try:
            client.verify(fspec, kwargs)
        except PilotException as exc:
            logger.warning("bulk stage-in of %s: %s", fspec.lfn, exc.diag)
            if exc.kwargs.get("kind") == CHECKSUM:
                corrupt[id(fspec)] = (fspec.turl, exc)
            fspec.status, fspec.status_code, fspec.transfer_error = None, 0, ""
            return False
        client.finish_trace(trace, fspec, "DONE", "", kwargs.get("trace_batch"))
        return True

    # checksums (when the tool reported none) and trace POSTs (without a batch) must not add up file after
    # file; one file, or a tool whose files need no such work, is checked in this thread (cheaper than a pool)
    workers = min(len(arrived), max(1, int(getattr(client, "max_workers", 8)))) or 1
    if workers == 1 or not transfers_in_threads(module, kwargs, True):
        results = [check(fspec) for fspec in arrived]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"bulk-{name}") as pool:
            results = list(pool.map(check, arrived))
    left.extend(f for f, ok in zip(arrived, results) if not ok)
    finished = [f for f, ok in zip(arrived, results) if ok]
    done = len(finished)
    logger.info("bulk stage-in with %s: %d of %d file(s) done%s", name, done, len(ready),
                " (cancelled)" if stop is not None and stop.is_set() else "")
    return left, corrupt
