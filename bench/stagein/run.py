"""Stage-in benchmark of the Data API against the real XRootD and Rucio of ci/storage.

For each copytool (default: xrdcp and rucio), in one run:

* 200 x 10 kB: the Data API as the pilot calls it (bounded pool, bulk copies) against one-at-a-time
  copying with the same tool (the Data API with ``max_workers=1, use_bulk=False``, and the bare tool:
  one ``xrdcp`` command per file, or one Rucio ``download_pfns`` call per file).
* 5 x 200 MB: the Data API against plain ``xrdcp`` of the same files (one command per file, one command
  for all five with ``--parallel 5``, and that command with ``--cksum adler32:print``, i.e. doing the
  checksum work the Data API must do); the ratio uses the fastest plain variant without checksum.

Each measurement is repeated (``--repeat``, default 5), the variants taking turns, and the median is
used. The input files are written once straight onto PILOT_XRD's storage path (deterministic content,
so a rewrite gives the same adler32) and registered with one bulk ``add_replicas`` call; later runs
find them and only rewrite bytes that are missing. Downloaded copies are removed after every
measurement; the large inputs are removed at the end unless ``--keep-data`` (their registration stays,
which is harmless). As root, the script re-runs itself in a private mount namespace whose /etc/hosts
maps this machine's interface addresses (``--no-private-hosts`` to turn off): every xrdcp process
reverse-resolves them at start, and the sandbox's DNS drops some of those queries (5 s stalls).

    . ci/storage/client-env.sh VENV
    python bench/stagein/run.py [--tools xrdcp,rucio] [--repeat 3] [--out bench/stagein/results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from pilot.api.data import StageInClient  # noqa: E402
from pilot.copytool.common import deterministic_path  # noqa: E402
from pilot.info import FileSpec, InfoService  # noqa: E402

RSE = "PILOT_XRD"
SCOPE = "tests"
STORAGE_DATA = os.environ.get("STORAGE_DATA", "/tmp/pilot-storage/data")
RSE_DIR = os.path.join(STORAGE_DATA, "rucio", "xrd")
XRD_PREFIX = "root://127.0.0.1:1094//rucio/xrd/"
QUEUE = {"nickname": "BENCH", "state": "ACTIVE", "maxwdir": 100000, "maxinputsize": -1,
         "astorages": {"pr": [RSE]}}
STORAGES = {RSE: {"name": RSE, "is_deterministic": True, "arprotocols": {
    "read_lan": [{"endpoint": "root://127.0.0.1:1094", "path": "//rucio/xrd/", "id": 1}]}}}
MB = 1024 * 1024

log = logging.getLogger("bench")


# ---------------------------------------------------------------------------- the input data set
def content(name: str, size: int) -> bytes:
    """Deterministic bytes for a file name (a rewrite gives the same adler32)."""
    return random.Random(name).randbytes(size)


def ensure_dataset(prefix: str, count: int, size: int) -> list:
    """The (name, size, adler32) of ``count`` files on PILOT_XRD; writes/registers only what is missing."""
    from rucio.client import Client

    client = Client()
    names = [f"{prefix}-{i:04d}.dat" for i in range(count)]
    known = {r["name"]: r for r in client.list_replicas([{"scope": SCOPE, "name": n} for n in names])
             if RSE in (r.get("rses") or {})}
    specs, register = [], []
    for name in names:
        path = os.path.join(RSE_DIR, deterministic_path(SCOPE, name))
        entry = known.get(name)
        if not (os.path.isfile(path) and os.path.getsize(path) == size and entry):
            data = content(name, size)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".part", "wb") as handle:
                handle.write(data)
            os.replace(path + ".part", path)
            checksum = f"{zlib.adler32(data) & 0xffffffff:08x}"
            if entry is None:
                register.append({"scope": SCOPE, "name": name, "bytes": size, "adler32": checksum})
            elif entry.get("adler32") != checksum:
                raise SystemExit(f"{name} is registered with adler32 {entry.get('adler32')}, not {checksum}")
            specs.append((name, size, checksum))
        else:
            specs.append((name, size, entry["adler32"]))
    if register:
        client.add_replicas(RSE, register)  # one bulk call: the SQLite-backed test Rucio serializes writes
        log.warning("registered %d new replica(s) of %s-*", len(register), prefix)
    return specs


def remove_bytes(specs: list) -> None:
    for name, _, _ in specs:
        try:
            os.unlink(os.path.join(RSE_DIR, deterministic_path(SCOPE, name)))
        except OSError:
            pass


# ---------------------------------------------------------------------------- what is measured
def fresh(workdir: str) -> str:
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    return workdir


def data_api(info, tool: str, specs: list, workdir: str, lookup: str = "auto", **client_kw) -> float:
    """One Data API stage-in of ``specs`` (``use_bulk`` and ``max_workers`` go to the client/transfer).

    The files name their storage (``ddmendpoint``, a job's ddmEndPointIn) with size and adler32, as
    PanDA job definitions do. ``lookup`` is ``[Rucio] replica_lookup``: ``auto`` reads them from that
    deterministic LAN storage without asking Rucio, ``always`` asks Rucio's list_replicas first (Pilot 2).
    """
    from pilot.util.config import config

    fresh(workdir)
    use_bulk = client_kw.pop("use_bulk", None)
    files = [FileSpec(type="input", scope=SCOPE, lfn=n, filesize=s, checksum={"adler32": a}, ddmendpoint=RSE)
             for n, s, a in specs]
    client = StageInClient(info, acopytools={"pr": [tool]}, **client_kw)
    config.set("Rucio", "replica_lookup", lookup)
    start = time.monotonic()
    try:
        client.transfer(files, activity="pr", workdir=workdir, use_bulk=use_bulk)
    finally:
        config.clear_overrides()
    elapsed = time.monotonic() - start
    bad = [f.lfn for f in files if f.status != "transferred"]
    if bad:
        raise SystemExit(f"{tool}: {len(bad)} file(s) not transferred: {bad[:3]}")
    return elapsed


def plain_xrdcp_each(specs: list, workdir: str) -> float:
    """One ``xrdcp`` per file, one after the other."""
    fresh(workdir)
    start = time.monotonic()
    for name, _, _ in specs:
        url = XRD_PREFIX + deterministic_path(SCOPE, name)
        subprocess.run(["xrdcp", "-np", "-f", url, os.path.join(workdir, name)], check=True,
                       stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def plain_xrdcp_all(specs: list, workdir: str, checksum: bool = False) -> float:
    """One ``xrdcp --parallel N`` for all files (with ``--cksum adler32:print`` when ``checksum``)."""
    fresh(workdir)
    urls = [XRD_PREFIX + deterministic_path(SCOPE, name) for name, _, _ in specs]
    options = ["--cksum", "adler32:print"] if checksum else []
    start = time.monotonic()
    subprocess.run(["xrdcp", "-np", "-f", "--parallel", str(len(urls))] + options + urls + [workdir + "/"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def plain_rucio_each(specs: list, workdir: str) -> float:
    """One Rucio ``download_pfns`` call per file (one client), one after the other."""
    from rucio.client import Client
    from rucio.client.downloadclient import DownloadClient

    fresh(workdir)
    client = DownloadClient(client=Client(), logger=logging.getLogger("bench.rucio").log, tracing=False)
    start = time.monotonic()
    for name, _, checksum in specs:
        client.download_pfns([{"did": f"{SCOPE}:{name}", "pfn": XRD_PREFIX + deterministic_path(SCOPE, name),
                               "rse": RSE, "base_dir": workdir, "no_subdir": True, "adler32": checksum}],
                             num_threads=1)
    return time.monotonic() - start


def replica_lookup(tool: str, specs: list) -> float:
    """One Rucio ``list_replicas`` for ``specs`` with the schemes the Data API asks for this tool."""
    from pilot.api.replicas import list_replicas, rucio_client
    from pilot.common.pluginfactory import PluginFactory

    client = rucio_client()
    schemas = getattr(PluginFactory().load_copytool(tool), "allowed_schemas", None)
    files = [FileSpec(type="input", scope=SCOPE, lfn=n) for n, _, _ in specs]
    start = time.monotonic()
    list_replicas(client, files, allowed_schemas=schemas)
    return time.monotonic() - start


# ---------------------------------------------------------------------------- the environment
def private_hosts_file(path: str) -> str:
    """/etc/hosts plus this machine's interface addresses (so reverse lookups never reach DNS)."""
    import socket

    addresses = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    name = socket.gethostname()
    with open("/etc/hosts") as handle:
        lines = handle.read().rstrip("\n").split("\n")
    for addr in addresses:
        lines.append(f"{addr} {name}")
        if ":" not in addr:
            lines.append(f"::ffff:{addr} {name}")  # XRootD resolves IPv4 addresses in their mapped IPv6 form
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def reexec_with_private_hosts(tmp: str) -> int:
    """Run this script again in a private mount namespace whose /etc/hosts maps the interface addresses."""
    hosts = private_hosts_file(os.path.join(tmp, "hosts"))
    script = 'mount --bind "$0" /etc/hosts && exec "$@"'
    cmd = ["unshare", "--mount", "sh", "-c", script, hosts, sys.executable] + sys.argv + ["--no-private-hosts"]
    return subprocess.run(cmd, env=dict(os.environ, BENCH_PRIVATE_HOSTS="1")).returncode


# ---------------------------------------------------------------------------- main
def interleaved(repeat: int, variants: dict) -> dict:
    """Median seconds of each ``name: (func, args, kwargs)``, the variants taking turns (drift hits all alike)."""
    times: dict = {name: [] for name in variants}
    for _ in range(repeat):
        for name, (func, args, kwargs) in variants.items():
            times[name].append(func(*args, **kwargs))
    return {name: statistics.median(values) for name, values in times.items()}


def bench_tool(info, tool: str, small: list, large: list, work: str, repeat: int) -> dict:
    out: dict = {}
    data_api(info, tool, small[:5], work)  # warm-up: imports, Rucio token, page cache of the source files
    plain = plain_xrdcp_each if tool == "xrdcp" else plain_rucio_each
    serial = {"max_workers": 1, "use_bulk": False}
    t = interleaved(repeat, {
        "lookup": (replica_lookup, (tool, small), {}),
        "fast": (data_api, (info, tool, small, work), {}),
        "fast_always": (data_api, (info, tool, small, work), {"lookup": "always"}),
        "serial": (data_api, (info, tool, small, work), serial),
        "serial_always": (data_api, (info, tool, small, work), {"lookup": "always", **serial}),
        "bare": (plain, (small, work), {})})
    out["small"] = {"data_api_s": round(t["fast"], 2), "data_api_lookup_always_s": round(t["fast_always"], 2),
                    "one_at_a_time_data_api_s": round(t["serial"], 2),
                    "one_at_a_time_data_api_lookup_always_s": round(t["serial_always"], 2),
                    f"one_at_a_time_plain_{tool}_s": round(t["bare"], 2), "replica_lookup_s": round(t["lookup"], 2),
                    "speedup": round(t["serial"] / t["fast"], 1),
                    "speedup_vs_pilot2_way": round(t["serial_always"] / t["fast"], 1),
                    "speedup_vs_plain": round(t["bare"] / t["fast"], 1),
                    "speedup_lookup_always": round(t["serial_always"] / t["fast_always"], 1)}
    if large:
        t = interleaved(repeat, {
            "ours": (data_api, (info, tool, large, work), {}),
            "each": (plain_xrdcp_each, (large, work), {}),
            "together": (plain_xrdcp_all, (large, work), {}),
            "checked": (plain_xrdcp_all, (large, work), {"checksum": True})})
        out["large"] = {"data_api_s": round(t["ours"], 2), "plain_xrdcp_each_s": round(t["each"], 2),
                        "plain_xrdcp_parallel_s": round(t["together"], 2),
                        "plain_xrdcp_parallel_cksum_s": round(t["checked"], 2),
                        "ratio": round(t["ours"] / min(t["each"], t["together"]), 2),
                        "ratio_vs_cksum": round(t["ours"] / t["checked"], 2)}
    shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tools", default="xrdcp,rucio")
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--small-kb", type=int, default=10)
    parser.add_argument("--large", type=int, default=5)
    parser.add_argument("--large-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep-data", action="store_true", help="leave the large input files on storage")
    parser.add_argument("--no-private-hosts", dest="private_hosts", action="store_false",
                        help="run with the machine's /etc/hosts (see results.md: DNS stalls of xrdcp)")
    parser.add_argument("--out", default="bench/stagein/results.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("PILOT_USE_RUCIO_TRACES", "false")
    tmp = tempfile.mkdtemp(prefix="bench-stagein-")
    if args.private_hosts and shutil.which("unshare") and os.geteuid() == 0:
        try:
            return reexec_with_private_hosts(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "argv": sys.argv[1:], "tools": {},
                     "private_hosts": os.environ.get("BENCH_PRIVATE_HOSTS") == "1", "cpus": os.cpu_count()}
    large: list = []
    try:
        for name, data in (("q.json", QUEUE), ("s.json", STORAGES)):
            with open(os.path.join(tmp, name), "w") as handle:
                json.dump(data, handle)
        info = InfoService().init("BENCH", queuedata_path=os.path.join(tmp, "q.json"),
                                  storagedata_path=os.path.join(tmp, "s.json"), cache_dir=tmp, use_config=False)
        start = time.monotonic()
        small = ensure_dataset(f"bench-stagein-{args.small_kb}k", args.small, args.small_kb * 1024)
        large = ensure_dataset(f"bench-stagein-{args.large_mb}m", args.large, args.large_mb * MB) if args.large else []
        results["dataset_s"] = round(time.monotonic() - start, 1)
        for tool in args.tools.split(","):
            results["tools"][tool] = bench_tool(info, tool, small, large, os.path.join(tmp, "work"), args.repeat)
            print(tool, json.dumps(results["tools"][tool]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if large and not args.keep_data:
            remove_bytes(large)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
