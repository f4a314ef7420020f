"""The 2017 Data API shape: ``transfer(list of dicts)`` returning the dicts annotated.

Stage-in dicts: ``scope``, ``name``, ``destination`` (a directory); optional ``rse``, ``guid``.
Stage-out dicts: ``scope``, ``file`` (local path), ``rse``; optional ``lifetime``, ``no_register``,
``guid``, ``attach`` ({scope, name}), ``summary``.

Each dict comes back with ``errno`` (0 done, 1 source/destination missing, 2 still running, 3 failed),
``status`` (done, failed, running) and ``errmsg``; the transfer itself goes through the current
FileSpec path, so checksums, retries and traces behave the same.
"""

from __future__ import annotations

import os
from typing import Any

from pilot.common.exception import PilotException
from pilot.info.filespec import FileSpec

ERRNO_DONE, ERRNO_MISSING, ERRNO_RUNNING, ERRNO_FAILED = 0, 1, 2, 3


def transfer_dicts(client: Any, items: list, activity: Any = "default", **kwargs: Any) -> list:
    """Run ``client`` over legacy dicts and annotate them."""
    stagein = client.mode == "stage-in"
    pairs = []
    for item in items:
        fspec = _to_filespec(item, stagein)
        if fspec is None:
            continue
        item.update(status="running", errno=ERRNO_RUNNING, errmsg="transfer not finished")
        pairs.append((item, fspec))
    if pairs:
        options = {k: v for k, v in kwargs.items() if k != "raise_exception"}
        if not stagein:
            first = pairs[0][0]
            options.setdefault("summary", bool(first.get("summary")))
            options.setdefault("no_register", bool(first.get("no_register", True)))
            options.setdefault("lifetime", first.get("lifetime"))
        try:
            client.transfer([f for _, f in pairs], activity=activity, raise_exception=False, **options)
        except PilotException as exc:  # configuration problems (e.g. unknown copytool)
            for item, fspec in pairs:
                fspec.status, fspec.status_code, fspec.transfer_error = "failed", exc.get_error_code(), exc.diag
    for item, fspec in pairs:
        if fspec.is_transferred:
            item.update(status="done", errno=ERRNO_DONE, errmsg="", pfn=fspec.turl or fspec.surl,
                        adler32=fspec.checksum.get("adler32"), bytes=fspec.filesize)
        else:
            item.update(status="failed", errno=ERRNO_FAILED, errmsg=fspec.transfer_error or "transfer failed",
                        errcode=fspec.status_code)
    return items


def _to_filespec(item: dict, stagein: bool) -> Any:
    """The FileSpec for a legacy dict, or None (dict marked errno 1) when its source/destination is missing."""
    if stagein:
        dest = item.get("destination") or ""
        if not dest or not os.path.isdir(dest):
            item.update(status="failed", errno=ERRNO_MISSING, errmsg=f"destination directory does not exist: {dest}")
            return None
        return FileSpec(filetype="input", scope=item.get("scope", ""), lfn=item.get("name", ""), workdir=dest,
                        ddmendpoint=item.get("rse") or "", guid=item.get("guid") or "")
    path = item.get("file") or ""
    if not path or not os.path.isfile(path):
        item.update(status="failed", errno=ERRNO_MISSING, errmsg=f"source file does not exist: {path}")
        return None
    attach = item.get("attach") or {}
    return FileSpec(filetype="output", scope=item.get("scope", ""), lfn=os.path.basename(path),
                    workdir=os.path.dirname(os.path.abspath(path)), ddmendpoint=item.get("rse") or "",
                    guid=item.get("guid") or "", dataset=attach.get("name", "") if isinstance(attach, dict) else "")
