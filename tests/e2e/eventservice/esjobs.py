"""Event-service jobs for whole-pilot tests: the sample job turned into an ES job run by the test payload."""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import zlib
from pathlib import Path
from typing import Optional

from pilot.devserver.samples import sample_job

REPO = Path(__file__).resolve().parents[3]
TEST_PAYLOAD = REPO / "pilot" / "eventservice" / "testpayload.py"
#: small limits: stage-out at most every 2 s, the payload has 5 s to exit after "No more events"
ES_CONFIG = "\n[Payload]\nes_exit_wait: 5\n"


def adler32_bytes(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xffffffff:08x}"


def storage_file(storage_dir: str, scope: str, lfn: str) -> Path:
    digest = hashlib.md5(f"{scope}:{lfn}".encode()).hexdigest()
    return Path(storage_dir) / scope.replace(".", "/") / digest[0:2] / digest[2:4] / lfn


def es_job(storage_dir: str, nranges: int, payload_args: str = "", jobset: str = "7", tag: str = "",
           ranges: bool = True) -> tuple:
    """(definition, range ids): the sample job as an event-service job with ``nranges`` ranges of 5 events."""
    job = sample_job(storage_dir)
    lfn, guid, scope = job["inFiles"], job["GUID"], job["scopeIn"]
    ids = [f"es{tag}-{jobset}-{i}" for i in range(1, nranges + 1)]
    pars = f"-c '{sys.executable} {TEST_PAYLOAD} {payload_args}'"
    job.update({"eventService": "True", "jobsetID": jobset, "transformation": "/bin/bash", "jobPars": pars})
    if ranges:
        job["_eventRanges"] = [{"eventRangeID": rid, "LFN": lfn, "GUID": guid, "scope": scope,
                                "startEvent": 5 * i + 1, "lastEvent": 5 * i + 5} for i, rid in enumerate(ids)]
    return job, ids


def merge_job(storage_dir: str, premerge: list, members: list, output: Optional[str] = None) -> dict:
    """An ES merge job reading the premerge tarballs (``zip://`` LFNs) of ``premerge`` [(lfn, size, adler32)]."""
    job = sample_job(storage_dir)
    out = output or job["outFiles"].split(",")[0]
    count = len(premerge)
    job.update({
        "eventServiceMerge": "True", "transformation": "/bin/bash",
        "jobPars": f"-c '{sys.executable} {TEST_PAYLOAD} merge --inputHitsFile=@inputFor_merge --output {out}'",
        "inFiles": ",".join(f"zip://{lfn}" for lfn, _, _ in premerge),
        "fsize": ",".join(str(size) for _, size, _ in premerge),
        "checksum": ",".join(f"ad:{adler}" for _, _, adler in premerge),
        "GUID": ",".join(f"00000000-0000-0000-0000-{i:012d}" for i in range(count)),
        "scopeIn": ",".join(["transient"] * count),
        "realDatasetsIn": ",".join(["transient:premerge"] * count),
        "ddmEndPointIn": ",".join(["LOCAL_DISK"] * count),
        "prodDBlockToken": ",".join(["NULL"] * count),
        "dispatchDblock": ",".join(["NULL"] * count),
        "writeToFile": "inputFor_merge:" + ",".join(members),
    })
    return job


def tar_members(path: Path) -> dict:
    """name -> bytes of a tarball's members."""
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def make_tar(members: dict) -> bytes:
    """A tarball (bytes) of name -> bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
