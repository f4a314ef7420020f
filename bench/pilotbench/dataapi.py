"""Scenario h (issue 21, point 3): the Data API as Harvester's preparators call it, ours against Pilot 3's.

1,000 inputs (10 kB each by default) lie on the loopback XRootD RSE ``PILOT_XRD`` and are registered in the
loopback Rucio; each pilot's own interpreter runs ``dataapi_driver.py`` (the call shape of Harvester's
``pilotmover_mt_preparator``: three threads, each its own ``StageInClient`` with the ``rucio`` copytool, all
files in one ``transfer`` per thread) inside ``measure.launch`` (PID namespace, ``PILOT_NOKILL=1``), with the
queue and storage data of the dev server. Pilots alternate per round. Then the bench reads every downloaded file
back and checks its adler32 against the registered one. Target: ours' transfer wall time ≤ 1/5 of Pilot 3's,
every checksum verified.

    python -m bench.pilotbench.dataapi [--files 1000] [--size 10240] [--rounds 3]
    python -m bench.pilotbench.dataapi --smoke        # 10 files, 1 round
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import time
import zlib
from pathlib import Path
from typing import Optional

from . import WORK
from .install import install
from .jobs import Storage
from .measure import launch
from .pilots import PILOTS, QUEUE, config_text
from .xrdstorage import RSE, XrdStorage, scratch_dir

logger = logging.getLogger("pilotbench")
DRIVER = Path(__file__).with_name("dataapi_driver.py")
PILOT_KEYS = ("pilot3", "ours")


def adler32_of(path: Path) -> str:
    value = 1
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            value = zlib.adler32(block, value)
    return f"{value & 0xffffffff:08x}"


def verify(dest: Path, files: list) -> dict:
    """How many of ``files`` lie in ``dest`` (directly or below) with their registered adler32."""
    found = {p.name: p for p in dest.rglob("*") if p.is_file()}
    ok = bad = missing = 0
    for f in files:
        path = found.get(f.lfn)
        if path is None:
            missing += 1
        elif path.stat().st_size == f.size and adler32_of(path) == f.adler32:
            ok += 1
        else:
            bad += 1
    return {"verified": ok, "bad": bad, "missing": missing}


def spec(files: list, scope: str, dest: Path, threads: int = 3) -> dict:
    """The driver's input: Harvester's file attributes for every input."""
    return {"queue": QUEUE, "threads": threads,
            "files": [{"scope": scope, "name": f.lfn, "dataset": f"{scope}:bench.dapi", "ddmendpoint": RSE,
                       "guid": None, "workdir": str(dest)} for f in files]}


def run_one(server, xrd: XrdStorage, key: str, files: list, scope: str, rundir: Path, timeout: float) -> dict:
    """One pilot's Data API call on all files; the measurements and the checksum check."""
    pilot = PILOTS[key]
    python, _ = pilot.python_and_script()
    shutil.rmtree(rundir, ignore_errors=True)
    rundir.mkdir(parents=True)
    dest = scratch_dir() / f"dapi-{key}"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    (rundir / "spec.json").write_text(json.dumps(spec(files, scope, dest)))
    cfg = rundir / "pilot.cfg"
    cfg.write_text(config_text(pilot, server.url, server.https_url))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(HARVESTER_PILOT_CONFIG=str(cfg), X509_USER_PROXY=server.info["proxy"],
               X509_CERT_DIR=server.info["certdir"], **xrd.pilot_env())
    os.sync()
    proc = launch([python, DRIVER, rundir / "spec.json", rundir / "result.json"], rundir, env,
                  rundir / "driver.log", timeout)
    try:
        result = json.loads((rundir / "result.json").read_text())
    except (OSError, ValueError):
        result = {}
    codes = result.get("codes") or {}
    out = {"pilot": key, "files": len(files), "exit_status": proc.exit_status, "timed_out": proc.timed_out,
           "process_wall": proc.end - proc.start, "cpu": proc.cpu, "transfer_s": result.get("transfer_s"),
           "import_s": result.get("import_s"), "init_s": result.get("init_s"),
           "status_ok": sum(1 for c in codes.values() if c == 0), "errors": result.get("errors"),
           **verify(dest, files)}
    shutil.rmtree(dest, ignore_errors=True)
    return out


def summary(runs: list) -> dict:
    """Median transfer time per pilot, ours / Pilot 3 and whether every run verified every file."""
    out: dict = {}
    for key in PILOT_KEYS:
        mine = [r for r in runs if r["pilot"] == key and r.get("transfer_s") is not None]
        out[key] = {"transfer_s": statistics.median(r["transfer_s"] for r in mine) if mine else None,
                    "process_wall": statistics.median(r["process_wall"] for r in mine) if mine else None,
                    "all_verified": bool(mine) and all(r["verified"] == r["files"] for r in mine)}
    ours, ref = out["ours"]["transfer_s"], out["pilot3"]["transfer_s"]
    out["ratio"] = ours / ref if ours is not None and ref else None
    out["target_met"] = (out["ratio"] is not None and out["ratio"] <= 0.2 and out["ours"]["all_verified"])
    return out


def markdown(doc: dict) -> str:
    s = doc["summary"]
    ratio = s["ratio"]
    lines = [f"## (h) the Data API as Harvester calls it: {doc['files']} inputs through Rucio from XRootD", "",
             f"{doc['files']} files of {doc['size']} bytes, {doc['rounds']} round(s); medians.", "",
             "| | Pilot 3 | ours | ours / Pilot 3 | target |", "|---|---|---|---|---|",
             f"| transfer wall (s) | {_f(s['pilot3']['transfer_s'])} | {_f(s['ours']['transfer_s'])} | {_f(ratio)} | "
             f"≤ 0.2 and every checksum verified: {'met' if s['target_met'] else 'MISSED'} |",
             f"| process wall, imports included (s) | {_f(s['pilot3']['process_wall'])} | "
             f"{_f(s['ours']['process_wall'])} | | |",
             f"| every file there with its adler32 | {s['pilot3']['all_verified']} | {s['ours']['all_verified']} | | |",
             ""]
    return "\n".join(lines)


def _f(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def main(argv: Optional[list] = None) -> int:
    from pilot.devserver.control import DevServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=10 * 1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="10 files, 1 round: proves it runs, no figure counts")
    parser.add_argument("--python39", help="Python 3.9 for Pilot 2 (installed with the others)")
    parser.add_argument("--out", help="base name of the .json/.md (default bench/work/results/dataapi-<stamp>)")
    parser.add_argument("--no-private-hosts", dest="private_hosts", action="store_false",
                        help="keep the machine's /etc/hosts (its copy processes may then stall on reverse DNS)")
    args = parser.parse_args(argv)
    if args.private_hosts and os.geteuid() == 0 and not os.environ.get("BENCH_PRIVATE_HOSTS"):
        from .curves import reexec_with_private_hosts
        return reexec_with_private_hosts("bench.pilotbench.dataapi")
    if args.smoke:
        args.files, args.rounds = 10, 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    installed = install(args.python39)
    xrd = XrdStorage()
    xrd.start()
    doc: dict = {"started": time.time(), "files": args.files, "size": args.size, "rounds": args.rounds,
                 "smoke": args.smoke, "install": installed,
                 "private_hosts": bool(os.environ.get("BENCH_PRIVATE_HOSTS")),
                 "loadavg_before": os.getloadavg()[0], "runs": []}
    try:
        storage = Storage(str(WORK / "dapi-storage"))
        files = storage.data_files(args.files, args.size, f"dapi{args.size}")
        scope = xrd.scope_for(files)
        xrd.publish(files, scope)
        with DevServer(WORK / "server-dapi", https=True) as server:
            server.set_storagedata(RSE, xrd.storage_entry(), merge=False)
            server.set_queuedata(QUEUE, xrd.queue_settings())
            for i in range(args.rounds):
                for key in (PILOT_KEYS if i % 2 == 0 else PILOT_KEYS[::-1]):
                    run = run_one(server, xrd, key, files, scope, WORK / "runs" / "dapi" / f"{key}-{i}",
                                  timeout=600 + args.files)
                    run["round"] = i
                    logger.info("dapi %s round %d: transfer %s s, %d/%d verified, exit %s", key, i,
                                run["transfer_s"], run["verified"], run["files"], run["exit_status"])
                    doc["runs"].append(run)
    finally:
        xrd.stop()
    doc["summary"] = summary(doc["runs"])
    doc["finished"] = time.time()
    base = Path(args.out) if args.out else WORK / "results" / f"dataapi-{time.strftime('%Y%m%d-%H%M%S')}"
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    base.with_suffix(".md").write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
