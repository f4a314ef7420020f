"""Scenario s (issue 21, point 4): how ours' cost grows with the number and the size of files.

Stage-in and stage-out through ours' Data API (in this process, as the pilot calls it: the ``xrdcp`` tool,
the loopback XRootD RSE ``PILOT_XRD``, inputs named with size and adler32 as a job gives them, read from
that deterministic LAN storage without a Rucio lookup) and the log archive (``logbench``), at 1, 10, 100,
1,000 and 10,000 files of 1 kB, and at one file of 1 kB, 1 MB, 100 MB and 1 GB. The plain tool on the same
files (one ``xrdcp --cksum adler32:print --parallel 8 --infiles`` call; ``tar czf`` for the log) is timed
beside each point; per-file overhead = (ours − plain) / N. The check for a hidden quadratic step: ours'
seconds per file at 10,000 files over those at 100 files, at most 2 (the copies themselves grow linearly).
Only ours runs here (the references are not started), so no PID namespace is needed.

    python -m bench.pilotbench.curves                  # the full curves (files on tmpfs, ~2 GB at most)
    python -m bench.pilotbench.curves --smoke          # 1, 10, 100 files and 1 kB, 64 kB: proves it runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Optional

from . import WORK, logbench
from .jobs import rucio_path
from .xrdstorage import RSE, XrdStorage, scratch_dir

SCOPE = "tests"
FILES = (1, 10, 100, 1_000, 10_000)
SIZES = (1024, 1024 ** 2, 100 * 1024 ** 2, 1024 ** 3)
SMALL = 1024
SMOKE_FILES = (1, 10, 100)
SMOKE_SIZES = (1024, 64 * 1024)


def _write(path: Path, size: int) -> str:
    """A file of ``size`` random bytes; its adler32."""
    path.parent.mkdir(parents=True, exist_ok=True)
    value = 1
    with open(path, "wb") as handle:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 1 << 22))
            handle.write(chunk)
            value = zlib.adler32(chunk, value)
            remaining -= len(chunk)
    return f"{value & 0xffffffff:08x}"


def info_service(xrd: XrdStorage, tmp: Path):
    """Ours' InfoService for a queue reading from and writing to PILOT_XRD (no server needed)."""
    from pilot.info import InfoService

    protocol = {"endpoint": xrd.url, "path": "//rucio/xrd/", "id": 1}
    queue = {"nickname": "BENCH", "state": "ACTIVE", "maxwdir": 10 ** 7, "maxinputsize": -1,
             "astorages": {"pr": [RSE], "pw": [RSE]}}
    storages = {RSE: {"name": RSE, "is_deterministic": True,
                      "arprotocols": {a: [dict(protocol)] for a in ("read_lan", "write_lan", "pr", "pw")}}}
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "q.json").write_text(json.dumps(queue))
    (tmp / "s.json").write_text(json.dumps(storages))
    return InfoService().init("BENCH", queuedata_path=str(tmp / "q.json"), storagedata_path=str(tmp / "s.json"),
                              cache_dir=str(tmp), use_config=False)


def _xrdcp_all(sources: list, dest: str, listing: Path) -> float:
    listing.write_text("".join(f"{s}\n" for s in sources))
    os.sync()
    start = time.monotonic()
    done = subprocess.run(["xrdcp", "-s", "-f", "-p", "--cksum", "adler32:print", "--parallel",
                           str(min(len(sources), 8)), "--infiles", str(listing), dest], capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if done.returncode:
        raise RuntimeError(f"xrdcp --infiles: exit {done.returncode}: {done.stderr.strip()[-300:]}")
    return elapsed


def point(info, xrd: XrdStorage, n: int, size: int, root: Path) -> dict:
    """Stage-in and stage-out of ``n`` files of ``size`` bytes: ours and the plain xrdcp."""
    from pilot.api.data import StageInClient, StageOutClient
    from pilot.info import FileSpec

    tag = f"c{os.getpid()}-{int(time.time() * 1000)}"
    names = [f"{tag}.{i:05d}.dat" for i in range(n)]
    remote = {name: xrd.rse_dir / rucio_path(SCOPE, name) for name in names}
    sums = {name: _write(path, size) for name, path in remote.items()}
    result: dict = {"files": n, "size": size}
    try:
        dest = root / "in"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        files = [FileSpec(type="input", scope=SCOPE, lfn=name, filesize=size, checksum={"adler32": sums[name]},
                          ddmendpoint=RSE) for name in names]
        os.sync()
        start = time.monotonic()
        StageInClient(info, acopytools={"pr": ["xrdcp"]}).transfer(files, activity="pr", workdir=str(dest))
        result["stagein"] = time.monotonic() - start
        result["stagein_ok"] = sum(1 for f in files if f.status == "transferred")
        plain_dest = root / "plain-in"
        shutil.rmtree(plain_dest, ignore_errors=True)
        plain_dest.mkdir()
        result["stagein_plain"] = _xrdcp_all([f"{xrd.url}//rucio/xrd/{rucio_path(SCOPE, name)}" for name in names],
                                             str(plain_dest) + "/", root / "list-in.txt")
        shutil.rmtree(plain_dest, ignore_errors=True)
        for path in remote.values():  # the stage-out puts them back
            path.unlink()
        outs = [FileSpec(type="output", scope=SCOPE, lfn=name, ddmendpoint=RSE, workdir=str(dest)) for name in names]
        os.sync()
        start = time.monotonic()
        StageOutClient(info, acopytools={"pw": ["xrdcp"]}).transfer(outs, activity="pw")
        result["stageout"] = time.monotonic() - start
        result["stageout_ok"] = sum(1 for f in outs if f.status == "transferred")
        result["stageout_plain"] = _xrdcp_all([str(dest / name) for name in names],
                                              f"{xrd.url}//rucio/xrd/bench-plain/{tag}/", root / "list-out.txt")
    finally:
        for path in remote.values():
            path.unlink(missing_ok=True)
        shutil.rmtree(xrd.rse_dir / "bench-plain" / tag, ignore_errors=True)
        shutil.rmtree(root / "in", ignore_errors=True)
    for phase in ("stagein", "stageout"):
        result[f"{phase}_per_file"] = result[phase] / n
        result[f"{phase}_overhead_per_file"] = (result[phase] - result[f"{phase}_plain"]) / n
    return result


def growth(curve: list, key: str, low: int = 100, high: int = 10_000) -> Optional[float]:
    """``key`` (seconds per file) at ``high`` files over that at ``low`` (at most 2 holds); None if absent."""
    by_n = {p["files"]: p.get(key) for p in curve}
    if not by_n.get(low) or by_n.get(high) is None:
        return None
    return by_n[high] / by_n[low]


def run(smoke: bool) -> dict:
    files, sizes = (SMOKE_FILES, SMOKE_SIZES) if smoke else (FILES, SIZES)
    xrd = XrdStorage()
    xrd.start()
    root = scratch_dir() / "curves"
    doc: dict = {"started": time.time(), "smoke": smoke, "loadavg_before": os.getloadavg()[0],
                 "private_hosts": os.environ.get("BENCH_PRIVATE_HOSTS") == "1"}
    try:
        info = info_service(xrd, root / "info")
        doc["by_files"] = [point(info, xrd, n, SMALL, root) for n in files]
        doc["by_size"] = [point(info, xrd, 1, s, root) for s in sizes]
    finally:
        xrd.stop()
        shutil.rmtree(root, ignore_errors=True)
    doc["log_by_files"] = [logbench.measure(WORK / "curves-log", n, SMALL, 1, check_links=False) for n in files]
    doc["log_by_size"] = [logbench.measure(WORK / "curves-log", 1, s, 1, check_links=False) for s in sizes]
    doc["growth"] = {"stagein": growth(doc["by_files"], "stagein_per_file"),
                     "stageout": growth(doc["by_files"], "stageout_per_file"),
                     "log": growth(doc["log_by_files"], "pilot_per_file")}
    doc["finished"] = time.time()
    return doc


def markdown(doc: dict) -> str:
    lines = ["## (s) how ours' cost grows: stage-in, stage-out (xrdcp, XRootD) and the log", "",
             "| files × bytes | stage-in (s) | plain (s) | stage-out (s) | plain (s) | log (s) | tar czf (s) |",
             "|---|---|---|---|---|---|---|"]
    for p, log in zip(doc["by_files"] + doc["by_size"], doc["log_by_files"] + doc["log_by_size"]):
        lines.append(f"| {p['files']} × {p['size']} | {p['stagein']:.3g} | {p['stagein_plain']:.3g} | "
                     f"{p['stageout']:.3g} | {p['stageout_plain']:.3g} | {log['pilot_wall']:.3g} | "
                     f"{log['tar_wall']:.3g} |")
    lines += ["", "Seconds per file at 10,000 files over those at 100 (no hidden quadratic step: at most 2):", ""]
    for key, value in doc["growth"].items():
        lines.append(f"- {key}: " + ("not measured" if value is None else
                                     f"{value:.2f} ({'met' if value <= 2 else 'MISSED'})"))
    lines.append("")
    return "\n".join(lines)


def plot(doc: dict, png: Path) -> Optional[Path]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    n = [p["files"] for p in doc["by_files"]]
    left.loglog(n, [p["stagein_per_file"] for p in doc["by_files"]], marker="o", label="stage-in")
    left.loglog(n, [p["stageout_per_file"] for p in doc["by_files"]], marker="o", label="stage-out")
    left.loglog(n, [p["pilot_per_file"] for p in doc["log_by_files"]], marker="o", label="log archive")
    left.loglog(n, [p["stagein_plain"] / p["files"] for p in doc["by_files"]], ls=":", label="plain xrdcp (in)")
    left.set_xlabel("files (1 kB each)")
    left.set_ylabel("seconds per file")
    left.legend()
    s = [p["size"] for p in doc["by_size"]]
    right.loglog(s, [p["stagein"] for p in doc["by_size"]], marker="o", label="stage-in")
    right.loglog(s, [p["stageout"] for p in doc["by_size"]], marker="o", label="stage-out")
    right.loglog(s, [p["pilot_wall"] for p in doc["log_by_size"]], marker="o", label="log archive")
    right.loglog(s, [p["stagein_plain"] for p in doc["by_size"]], ls=":", label="plain xrdcp (in)")
    right.set_xlabel("bytes of the one file")
    right.set_ylabel("seconds")
    right.legend()
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png


def _reexec_with_private_hosts() -> int:
    return reexec_with_private_hosts("bench.pilotbench.curves")


def reexec_with_private_hosts(module: str) -> int:
    """Run ``python -m module <same args>`` again in a private mount namespace whose /etc/hosts maps this
    machine's addresses (as ``bench/stagein/run.py`` does), so that no xrdcp process waits on the sandbox's DNS;
    every process started from there (the pilots in their PID namespaces too) sees that file."""
    import tempfile

    from bench.stagein.run import private_hosts_file

    tmp = tempfile.mkdtemp(prefix="bench-hosts-")
    try:
        hosts = private_hosts_file(os.path.join(tmp, "hosts"))
        script = 'mount --bind "$0" /etc/hosts && exec "$@"'
        cmd = ["unshare", "--mount", "sh", "-c", script, hosts, sys.executable, "-m", module, *sys.argv[1:]]
        return subprocess.run(cmd, env=dict(os.environ, BENCH_PRIVATE_HOSTS="1")).returncode
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small points only: proves it runs, no figure counts")
    parser.add_argument("--out", help="base name of the .json/.md/.png (default bench/work/results/curves-<stamp>)")
    parser.add_argument("--no-private-hosts", dest="private_hosts", action="store_false",
                        help="keep the machine's /etc/hosts (xrdcp processes then stall ~5 s on dropped reverse "
                             "DNS queries now and then: a stage-out of 40 files of 1 kB took 5.4 s, 5 of them a "
                             "stall)")
    args = parser.parse_args(argv)
    if args.private_hosts and os.geteuid() == 0 and not os.environ.get("BENCH_PRIVATE_HOSTS"):
        return _reexec_with_private_hosts()
    import logging
    logging.getLogger("pilot").setLevel(logging.ERROR)
    doc = run(args.smoke)
    base = Path(args.out) if args.out else WORK / "results" / f"curves-{time.strftime('%Y%m%d-%H%M%S')}"
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    base.with_suffix(".md").write_text(markdown(doc))
    plot(doc, base.with_suffix(".png"))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
