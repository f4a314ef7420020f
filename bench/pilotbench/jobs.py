"""Bench jobs: input files on the dev server's LOCAL_DISK storage and job definitions that use them.

The payload is a small bash script that is itself the job's first input file (``bench-payload.sh``).
The reference pilots' generic plug-in runs ``./<transformation name> <jobPars>`` and insists that the
transformation either is a URL on a known PanDA host (downloaded with curl) or already lies in the
job's work dir; stage-in puts it there. The script writes its start and end time and its own CPU time
(bash ``times``) into a stamp file outside the work dir, so the harness sees when the payload ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

SCOPE = "bench"
SCRIPT_LFN = "bench-payload.sh"
SCRIPT = rb"""#!/bin/bash
# pilot bench payload: bench-payload.sh <stamp file> <seconds> <output file> [<n> <bytes>]
# (n extra outputs <output file>.000 ... of random bytes, for the stage-out scenarios)
stamp=$1; secs=$2; out=$3; n=${4:-0}; size=${5:-0}
echo "start $(date +%s.%N)" >> "$stamp"
# when each staged-in file was put in place (inode change time; a symlink's own), for stage-in timing
find . -maxdepth 1 \( -type f -o -type l \) -printf 'ctime %C@ %f\n' >> "$stamp"
sleep "$secs"
wc -c < bench-payload.sh > "$out"
i=0
while [ "$i" -lt "$n" ]; do head -c "$size" /dev/urandom > "$out.$(printf %03d "$i")"; i=$((i + 1)); done
echo "end $(date +%s.%N)" >> "$stamp"
times >> "$stamp"
"""


@dataclass(frozen=True)
class InputFile:
    """One file on the storage."""

    lfn: str
    size: int
    adler32: str
    path: str


def rucio_path(scope: str, lfn: str) -> str:
    """Deterministic path of a file on the storage (scope dirs, two md5 levels)."""
    digest = hashlib.md5(f"{scope}:{lfn}".encode()).hexdigest()  # noqa: S324 - layout, not security
    return "/".join(scope.split(".") + [digest[0:2], digest[2:4], lfn])


def _adler32(path: Path) -> str:
    value = 1
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            value = zlib.adler32(block, value)
    return f"{value & 0xffffffff:08x}"


class Storage:
    """Creates (once) and describes the bench input files under the storage root."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self._index_path = self.root / "bench-index.json"
        self._index: dict = json.loads(self._index_path.read_text()) if self._index_path.exists() else {}

    def _put(self, lfn: str, size: int, content: Optional[bytes] = None, mode: int = 0o644) -> InputFile:
        path = self.root / rucio_path(SCOPE, lfn)
        known = self._index.get(lfn)
        same = content is None or (path.exists() and path.read_bytes() == content)
        if known and path.exists() and path.stat().st_size == known["size"] and same:
            if path.stat().st_mode & 0o777 != mode:
                os.chmod(path, mode)  # e.g. a results tree from a bench that had it changed
            return InputFile(lfn, known["size"], known["adler32"], str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as handle:
            if content is not None:
                handle.write(content)
            else:
                remaining = size
                while remaining:
                    chunk = os.urandom(min(remaining, 1 << 22))
                    handle.write(chunk)
                    remaining -= len(chunk)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        entry = {"size": path.stat().st_size, "adler32": _adler32(path)}
        self._index[lfn] = entry
        self._index_path.write_text(json.dumps(self._index, indent=1))
        return InputFile(lfn, entry["size"], entry["adler32"], str(path))

    def script(self) -> InputFile:
        """The payload script (executable on the storage, so a symlink to it runs)."""
        return self._put(SCRIPT_LFN, len(SCRIPT), SCRIPT, mode=0o755)

    def data_files(self, count: int, size: int, label: str) -> list[InputFile]:
        """``count`` random files of ``size`` bytes (reused across runs)."""
        return [self._put(f"bench.{label}.{i:03d}.dat", size) for i in range(count)]


def job_definition(inputs: list[InputFile], stamp: Path, seconds: float, via_bash: bool,
                   endpoint_in: str = "LOCAL_DISK", scope_in: str = SCOPE, extra_outputs: int = 0,
                   output_size: int = 0, endpoint_out: str = "LOCAL_DISK", scope_out: str = SCOPE) -> dict:
    """A generic job running the payload script for ``seconds``; unique output and log names.

    ``via_bash``: transformation ``/bin/bash`` with the script as first argument (for a pilot that
    copies inputs without their mode bits), else ``./bench-payload.sh`` (what the references need).
    ``endpoint_in``: the storage the inputs are read from. Inputs copied with ``xrdcp`` (``PILOT_XRD``)
    arrive without their mode bits in every pilot, and the references' generic plug-in only runs
    ``./<transformation> <jobPars>``; so there the parameters begin with ``2>/dev/null || bash
    ./bench-payload.sh``: the shell line first fails to execute the script (exit 126, nothing run) and
    then runs it with bash, the same line in all three pilots.
    ``extra_outputs`` files of ``output_size`` random bytes are written by the payload besides its output
    (``<output>.000`` ...) and staged out with it to ``endpoint_out`` in ``scope_out`` (the stage-out scenarios).
    """
    tag = uuid.uuid4().hex[:10]
    out, log = f"bench.out.{tag}.txt", f"bench.log.{tag}.tgz"
    args = f"{stamp} {seconds:g} {out}"
    extras = [f"{out}.{i:03d}" for i in range(extra_outputs)]
    if extras:
        args += f" {extra_outputs} {output_size}"
    outs = [out] + extras
    if endpoint_in != "LOCAL_DISK" and not via_bash:
        args = f"2>/dev/null || bash ./{SCRIPT_LFN} {args}"
    n = len(inputs)

    def rep(value: str) -> str:
        return ",".join([value] * n)

    return {
        "prodSourceLabel": "managed", "jobDefinitionID": "1", "taskID": "1", "jobsetID": "1", "attemptNr": "1",
        "transformation": "/bin/bash" if via_bash else f"./{SCRIPT_LFN}",
        "jobPars": f"./{SCRIPT_LFN} {args}" if via_bash else args,
        "swRelease": "NULL", "homepackage": "NULL", "cmtConfig": "NULL", "coreCount": "1", "maxCpuCount": "3600",
        "maxDiskCount": "10000", "minRamCount": "1000", "maxWalltime": "3600", "processingType": "bench",
        "transferType": "NULL", "currentPriority": "1000", "destinationSE": "LOCAL_DISK",
        "inFiles": ",".join(f.lfn for f in inputs), "GUID": ",".join(str(uuid.uuid4()) for _ in inputs),
        "fsize": ",".join(str(f.size) for f in inputs), "checksum": ",".join(f"ad:{f.adler32}" for f in inputs),
        "scopeIn": rep(scope_in), "realDatasetsIn": rep("bench:bench.inputs"), "prodDBlocks": rep("bench:bench.inputs"),
        "prodDBlockToken": rep("NULL"), "dispatchDblock": rep("NULL"), "dispatchDBlockToken": rep("NULL"),
        "ddmEndPointIn": rep(endpoint_in),
        "outFiles": ",".join(outs + [log]), "scopeOut": ",".join([scope_out] * len(outs)), "scopeLog": scope_out,
        "logFile": log, "logGUID": str(uuid.uuid4()),
        "realDatasets": ",".join([f"{scope_out}:bench.out"] * len(outs) + [f"{scope_out}:bench.log"]),
        "destinationDblock": ",".join([f"{scope_out}:bench.out"] * len(outs) + [f"{scope_out}:bench.log"]),
        "destinationDBlockToken": ",".join(["NULL"] * (len(outs) + 1)),
        "dispatchDBlockTokenForOut": ",".join(["NULL"] * (len(outs) + 1)),
        "fileDestinationSE": ",".join([endpoint_out] * (len(outs) + 1)),
        "ddmEndPointOut": ",".join([endpoint_out] * (len(outs) + 1)),
    }


def read_stamps(path: Path) -> dict:
    """Start/end times and the payload's own CPU seconds (shell + children) from a stamp file."""
    result: dict = {"start": None, "end": None, "cpu": 0.0, "ctimes": {}}
    if not path.exists():
        return result
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "ctime":
            result["ctimes"][parts[2]] = float(parts[1])
        elif len(parts) == 2 and parts[0] in ("start", "end"):
            result[parts[0]] = float(parts[1])
        elif len(parts) == 2 and all(p.endswith("s") and "m" in p for p in parts):
            for part in parts:
                minutes, seconds = part[:-1].split("m")
                result["cpu"] += 60 * float(minutes) + float(seconds)
    return result
