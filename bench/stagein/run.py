"""Stage-in benchmark against the real XRootD/Rucio of ci/storage.

Measures, in one run:
  * 200 x 10 kB files: the Data API with its concurrent pool vs one-at-a-time (max_workers=1)
  * 5 x 200 MB files: the Data API (xrdcp tool, concurrent) vs plain ``xrdcp`` one file after the other
for the copytools given (default xrdcp and rucio). Files are uploaded to PILOT_XRD through Rucio first
(registered, so the replica lookup is part of what is measured). Prints a table and writes JSON.

    . ci/storage/client-env.sh VENV && python bench/stagein/run.py [--tools xrdcp,rucio] [--small 200] [--large 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zlib

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from pilot.api.data import StageInClient  # noqa: E402
from pilot.info import FileSpec, InfoService  # noqa: E402

QUEUE = {"nickname": "BENCH", "state": "ACTIVE", "maxwdir": 100000, "maxinputsize": -1,
         "astorages": {"pr": ["PILOT_XRD"]}}
STORAGES = {"PILOT_XRD": {"name": "PILOT_XRD", "is_deterministic": True, "arprotocols": {
    "read_lan": [{"endpoint": "root://127.0.0.1:1094", "path": "//rucio/xrd/", "id": 1}]}}}


def adler(path: str) -> str:
    value = 1
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            value = zlib.adler32(chunk, value)
    return f"{value & 0xffffffff:08x}"


def make_files(base: str, count: int, size: int, tag: str) -> list:
    from rucio.client.uploadclient import UploadClient
    os.makedirs(base, exist_ok=True)
    items, specs = [], []
    for i in range(count):
        name = f"bench-{tag}-{size}-{i}.dat"
        path = os.path.join(base, name)
        with open(path, "wb") as handle:
            remaining = size
            while remaining:
                chunk = os.urandom(min(remaining, 1 << 20))
                handle.write(chunk)
                remaining -= len(chunk)
        items.append({"path": path, "rse": "PILOT_XRD", "did_scope": "tests", "did_name": name})
        specs.append((name, os.path.getsize(path), adler(path)))
    client = UploadClient(logger=logging.getLogger("bench"))
    for start in range(0, len(items), 20):  # small batches: the SQLite-backed test Rucio dislikes big ones
        batch = items[start:start + 20]
        for attempt in range(3):
            try:
                client.upload(batch)
                break
            except Exception as exc:  # transient "database is locked"
                if attempt == 2:
                    raise
                logging.warning("upload batch failed (%s), retrying", exc)
                time.sleep(1 + attempt)
    return specs


def stagein(info, tool: str, specs: list, workdir: str, workers: int) -> float:
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    files = [FileSpec(type="input", scope="tests", lfn=n, filesize=s, checksum={"adler32": a}) for n, s, a in specs]
    client = StageInClient(info, acopytools={"pr": [tool]}, max_workers=workers)
    start = time.monotonic()
    client.transfer(files, activity="pr", workdir=workdir)
    return time.monotonic() - start


def plain_xrdcp(specs: list, workdir: str) -> float:
    from pilot.copytool.common import deterministic_path
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    start = time.monotonic()
    for name, _, _ in specs:
        url = f"root://127.0.0.1:1094//rucio/xrd/{deterministic_path('tests', name)}"
        subprocess.run(["xrdcp", "-np", "-f", url, os.path.join(workdir, name)], check=True)
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tools", default="xrdcp,rucio")
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=5)
    parser.add_argument("--large-mb", type=int, default=200)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--out", default="bench/stagein/results.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("PILOT_USE_RUCIO_TRACES", "false")
    tmp = tempfile.mkdtemp(prefix="bench-stagein-")
    with open(os.path.join(tmp, "q.json"), "w") as handle:
        json.dump(QUEUE, handle)
    with open(os.path.join(tmp, "s.json"), "w") as handle:
        json.dump(STORAGES, handle)
    info = InfoService().init("BENCH", queuedata_path=os.path.join(tmp, "q.json"),
                              storagedata_path=os.path.join(tmp, "s.json"), cache_dir=tmp, use_config=False)
    tag = uuid.uuid4().hex[:8]
    results: dict = {}
    try:
        small = make_files(os.path.join(tmp, "src-small"), args.small, 10 * 1024, tag)
        large = make_files(os.path.join(tmp, "src-large"), args.large, args.large_mb * 1024 * 1024, tag)
        work = os.path.join(tmp, "work")
        for tool in args.tools.split(","):
            conc = stagein(info, tool, small, work, args.workers)
            serial = stagein(info, tool, small, work, 1)
            results[f"{tool}_small"] = {"concurrent_s": round(conc, 2), "one_at_a_time_s": round(serial, 2),
                                        "speedup": round(serial / conc, 2)}
            ours = stagein(info, tool, large, work, args.workers)
            plain = plain_xrdcp(large, work)
            results[f"{tool}_large"] = {"data_api_s": round(ours, 2), "plain_xrdcp_s": round(plain, 2),
                                        "ratio": round(ours / plain, 2)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for key, value in results.items():
        print(f"{key:14s} {value}")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
