"""Sample jobs with real input files on the dev server's local storage.

Files live under the deterministic layout the pilots use to build SURLs on a deterministic storage:
``<storage>/<scope split at dots>/<md5[0:2]>/<md5[2:4]>/<lfn>``, where the hash is the MD5 of
``<scope>:<lfn>``. Checksums are adler32 as eight hex digits, sent as ``ad:<hex>``.

This module is self-contained on purpose: the dev server must not depend on the pilot it tests.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import uuid
import zlib
from pathlib import Path
from typing import Any, Optional, Union

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
SAMPLE_JOB_FILE = SAMPLES_DIR / "job.json"
# the bytes of the sample input file; samples/job.json carries its size and adler32
SAMPLE_INPUT_CONTENT = b"PanDA development server sample input\n" * 16
DEFAULT_SCOPE = "dev"
DEFAULT_DDMENDPOINT = "LOCAL_DISK"

PathLike = Union[str, "os.PathLike[str]"]


def adler32_of_bytes(data: bytes) -> str:
    """Return the adler32 checksum of ``data`` as eight lower-case hex digits."""
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


def adler32_of_file(path: PathLike, blocksize: int = 1 << 20) -> str:
    """Return the adler32 checksum of a file as eight lower-case hex digits."""
    value = 1
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(blocksize), b""):
            value = zlib.adler32(block, value)
    return f"{value & 0xFFFFFFFF:08x}"


def rucio_path(scope: str, lfn: str) -> str:
    """Return the deterministic relative path of a file (scope split at dots, two hash levels)."""
    digest = hashlib.md5(f"{scope}:{lfn}".encode("utf-8")).hexdigest()  # noqa: S324 - layout, not security
    return "/".join(scope.split(".") + [digest[0:2], digest[2:4], lfn])


def storage_path(storage_dir: PathLike, scope: str, lfn: str) -> Path:
    """Return the absolute path of a file on the local storage."""
    return Path(storage_dir).resolve() / rucio_path(scope, lfn)


def put_file(storage_dir: PathLike, scope: str, lfn: str, content: bytes) -> tuple[Path, int, str]:
    """Write a file onto the local storage; returns (path, size, adler32)."""
    path = storage_path(storage_dir, scope, lfn)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return path, len(content), adler32_of_bytes(content)


def load_sample_job() -> dict[str, Any]:
    """Return the bundled sample job definition (``samples/job.json``) as a dictionary."""
    with open(SAMPLE_JOB_FILE, encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def _renamed(name: str, tag: str) -> str:
    """Insert ``tag`` before the last suffix of an LFN (``a.b.txt`` becomes ``a.b.<tag>.txt``)."""
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.{tag}.{suffix}" if dot else f"{name}.{tag}"


def sample_job(storage_dir: PathLike, *, pandaid: Optional[int] = None, unique: bool = True,
               contents: Optional[list[bytes]] = None, queue: Optional[str] = None,
               overrides: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Create the sample job's input files under ``storage_dir`` and return a matching job definition.

    ``unique`` gives every LFN (inputs, outputs, log) a fresh tag, so several sample jobs can run
    and stage out to the same storage without name clashes. ``contents`` replaces the input file
    contents (one bytes object per input; more entries add inputs). Sizes, adler32 checksums and
    GUIDs in the definition always match the files written. ``queue`` restricts the job to one
    PanDA queue (stored as the private key ``_queue``), ``overrides`` is applied last.
    """
    job = copy.deepcopy(load_sample_job())
    tag = uuid.uuid4().hex[:10] if unique else ""
    contents = list(contents) if contents is not None else [SAMPLE_INPUT_CONTENT]
    in_names = [name for name in job["inFiles"].split(",") if name]
    while len(in_names) < len(contents):
        in_names.append(_renamed(in_names[0], f"extra{len(in_names)}"))
    in_names = in_names[:len(contents)]
    if tag:
        in_names = [_renamed(name, tag) for name in in_names]
        job["outFiles"] = ",".join(_renamed(name, tag) for name in job["outFiles"].split(","))
        job["logFile"] = _renamed(job["logFile"], tag)
        job["logGUID"] = str(uuid.uuid4()).upper()
        job["jobPars"] = _retag_pars(job["jobPars"], tag)
    scope = job.get("scopeIn", DEFAULT_SCOPE).split(",")[0] or DEFAULT_SCOPE
    sizes, sums, guids = [], [], []
    for name, content in zip(in_names, contents):
        _, size, checksum = put_file(storage_dir, scope, name, content)
        sizes.append(str(size))
        sums.append(f"ad:{checksum}")
        guids.append(str(uuid.uuid4()).upper() if tag or len(contents) > 1 else job["GUID"].split(",")[0])
    count = len(in_names)
    job.update({
        "inFiles": ",".join(in_names),
        "fsize": ",".join(sizes),
        "checksum": ",".join(sums),
        "GUID": ",".join(guids),
        "scopeIn": ",".join([scope] * count),
        "realDatasetsIn": ",".join([job["realDatasetsIn"].split(",")[0]] * count),
        "ddmEndPointIn": ",".join([job["ddmEndPointIn"].split(",")[0]] * count),
        "prodDBlocks": ",".join([job.get("prodDBlocks", "").split(",")[0]] * count),
        "prodDBlockToken": ",".join([job.get("prodDBlockToken", "").split(",")[0]] * count),
        "dispatchDblock": ",".join([job.get("dispatchDblock", "").split(",")[0]] * count),
        "dispatchDBlockToken": ",".join([job.get("dispatchDBlockToken", "").split(",")[0]] * count),
    })
    if pandaid is not None:
        job["PandaID"] = str(pandaid)
    if queue:
        job["_queue"] = queue
    job.update(overrides or {})
    return job


def _retag_pars(pars: str, tag: str) -> str:
    """Rename the sample's output file inside jobPars (the inputs are matched by a glob)."""
    return pars.replace("dev.output.txt", _renamed("dev.output.txt", tag))
