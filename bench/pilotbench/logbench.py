"""Scenario l (issue 21, points 2 and 4): the pilot's log archive against ``tar czf`` on the same work dir.

The pilot's archive (:func:`pilot.util.archive.create_tarball`) runs in this process, as it does in the
pilot; ``tar`` runs as the plain tool, ``tar -cf - <dir> | gzip -6`` written by tar itself
(``tar -I 'gzip -6' -cf``), the compression level both use. Each is timed on the same files, in
alternating order, after a ``sync``, with the page cache warm for both (one untimed read of every file
first): the work dir has just been written by the payload when the pilot archives it.

The work dir holds ``nfiles`` files of equal size spread over sub-directories of 100, half of each file
pseudo-random bytes and half repeated text (so gzip has work of both kinds), plus two links: one to a file
inside the dir (archived as that file's contents by the pilot, as Pilot 2's ``tar -h`` does) and one to a
file outside it, which must never be in the archive: the scenario checks every run's member list for it.

    python -m bench.pilotbench.logbench                   # 10,000 files / 1 GB, 3 rounds, and the curve
    python -m bench.pilotbench.logbench --smoke           # 200 files / 2 MB, 1 round, a short curve
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Optional

from . import WORK

SUBDIR_FILES = 100
OUTSIDE_LINK = "link-out-of-dir"
INSIDE_LINK = "link-inside"
#: (files, bytes per file) of the target (point 2)
TARGET = (10_000, 100 * 1024)
#: the scaling curve (point 4): files at 10 kB each, then 10 files of growing size
CURVE_FILES = (1, 10, 100, 1_000, 10_000)
CURVE_SIZES = (1024, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024, 100 * 1024 * 1024)
CURVE_FILE_SIZE = 10 * 1024
CURVE_SIZE_FILES = 10
NOISE_CHUNK = 64 << 20  # bytes of random or text data written at a time


def make_workdir(root: Path, nfiles: int, size: int, seed: int = 21) -> Path:
    """A fresh work dir of ``nfiles`` files of ``size`` bytes, plus a link inside and one out of it."""
    shutil.rmtree(root, ignore_errors=True)
    work = root / "workdir"
    work.mkdir(parents=True)
    rng = random.Random(seed)
    text = b"INFO payload step done, event processed, writing output record\n"
    half = size // 2
    for i in range(nfiles):
        sub = work / f"d{i // SUBDIR_FILES:03d}"
        if i % SUBDIR_FILES == 0:
            sub.mkdir()
        with open(sub / f"f{i:05d}.dat", "wb") as handle:
            # the random half in chunks: getrandbits takes at most 2**31 - 1 bits (a 1 GB file has 4 Gbit)
            for start in range(0, half, NOISE_CHUNK):
                n = min(NOISE_CHUNK, half - start)
                handle.write(rng.getrandbits(8 * n).to_bytes(n, "little"))
            tail = size - half
            for start in range(0, tail, NOISE_CHUNK):
                n = min(NOISE_CHUNK, tail - start)
                handle.write((text * (n // len(text) + 1))[:n])
    outside = root / "outside-secret.txt"
    outside.write_text("must never be in the log archive\n")
    os.symlink(outside, work / OUTSIDE_LINK)
    os.symlink(f"d000/f{0:05d}.dat", work / INSIDE_LINK)
    return work


def _warm(work: Path) -> None:
    for dirpath, _, names in os.walk(work):
        for name in names:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                with open(path, "rb") as f:
                    while f.read(1 << 20):
                        pass


def time_pilot(work: Path, dest: Path) -> dict:
    """The pilot's archive of ``work`` into ``dest``: wall and CPU seconds, members."""
    from pilot.util.archive import GZIP_LEVEL, create_tarball

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    report = create_tarball(str(work), str(dest), "tarball_PandaJob_1", skip=lambda name: False, timeout=3600,
                            level=GZIP_LEVEL)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "members": report.members, "skipped": sorted(report.skipped),
            "size": dest.stat().st_size}


def time_tar(work: Path, dest: Path) -> dict:
    """``tar`` with gzip level 6 of the same dir: wall and CPU seconds (tar and gzip)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(["tar", "-I", "gzip -6", "-cf", str(dest), "-C", str(work.parent), work.name], check=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "size": dest.stat().st_size}


def escaped(archive: Path, secret: str = "must never be in the log archive") -> bool:
    """Whether the archive holds the outside file (under the link's name or its contents anywhere)."""
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.name.endswith("/" + OUTSIDE_LINK) and not member.issym():
                return True
            if member.isfile() and member.size < 4096:
                data = tar.extractfile(member)
                if data is not None and secret.encode() in data.read():
                    return True
    return False


def measure(root: Path, nfiles: int, size: int, rounds: int, check_links: bool = True) -> dict:
    """``rounds`` alternating timings of the pilot's archive and of tar on one work dir."""
    work = make_workdir(root, nfiles, size)
    _warm(work)
    runs = []
    for i in range(rounds):
        order = ("pilot", "tar") if i % 2 == 0 else ("tar", "pilot")
        run: dict = {}
        for who in order:
            dest = root / f"{who}.tgz"
            if dest.exists():
                dest.unlink()
            os.sync()
            run[who] = time_pilot(work, dest) if who == "pilot" else time_tar(work, dest)
        if check_links:
            run["pilot"]["escaped"] = escaped(root / "pilot.tgz")
        runs.append(run)
    shutil.rmtree(root, ignore_errors=True)
    return {"files": nfiles, "size": size, "bytes": nfiles * size, "runs": runs, **summary(runs, nfiles)}


def summary(runs: list, nfiles: int) -> dict:
    """Medians and the ratio pilot / tar (the target: at most 1.2), per-file costs."""
    pilot = statistics.median(r["pilot"]["wall"] for r in runs)
    tar = statistics.median(r["tar"]["wall"] for r in runs)
    return {"pilot_wall": pilot, "tar_wall": tar, "ratio": pilot / tar if tar > 0 else None,
            "pilot_per_file": pilot / nfiles, "tar_per_file": tar / nfiles,
            "overhead_per_file": (pilot - tar) / nfiles,
            "escaped": any(r["pilot"].get("escaped") for r in runs)}


def flatness(curve: list, low: int = 100, high: int = 10_000) -> Optional[float]:
    """Pilot seconds per file at ``high`` files over that at ``low`` (point 4: at most 2); None if absent."""
    by_n = {p["files"]: p["pilot_per_file"] for p in curve}
    if low not in by_n or high not in by_n or by_n[low] <= 0:
        return None
    return by_n[high] / by_n[low]


def run(root: Path, smoke: bool, rounds: int) -> dict:
    """The target point and both curves (files, then sizes)."""
    if smoke:
        target, files, sizes, per_size = (200, 10 * 1024), (1, 10, 100), (1024, 64 * 1024), 3
    else:
        target, files, sizes, per_size = TARGET, CURVE_FILES, CURVE_SIZES, CURVE_SIZE_FILES
    doc: dict = {"started": time.time(), "smoke": smoke, "rounds": rounds, "loadavg_before": os.getloadavg()[0]}
    doc["target"] = measure(root, target[0], target[1], rounds)
    doc["curve_files"] = [measure(root, n, CURVE_FILE_SIZE, rounds, check_links=False) for n in files]
    doc["curve_sizes"] = [measure(root, per_size, s, rounds, check_links=False) for s in sizes]
    doc["flatness_100_to_10000"] = flatness(doc["curve_files"])
    doc["finished"] = time.time()
    return doc


def markdown(doc: dict) -> str:
    """The log section of a report."""
    t = doc["target"]
    ratio = t["ratio"]
    lines = ["## (l) the log archive: the pilot's against tar czf (gzip -6) on the same files", "",
             f"{t['files']} files, {t['bytes'] / 1e6:.0f} MB, {len(t['runs'])} round(s); medians.", "",
             "| | pilot | tar czf | pilot / tar | target |", "|---|---|---|---|---|",
             f"| wall (s) | {t['pilot_wall']:.3g} | {t['tar_wall']:.3g} | {ratio:.2f} | ≤ 1.2: "
             f"{'met' if ratio is not None and ratio <= 1.2 else 'MISSED'} |",
             f"| a link out of the dir in the archive | {'YES' if t['escaped'] else 'no'} | | | never: "
             f"{'MISSED' if t['escaped'] else 'met'} |", "",
             "| files × size | pilot (s) | tar (s) | pilot per file (ms) | overhead per file (ms) |",
             "|---|---|---|---|---|"]
    for point in doc["curve_files"] + doc["curve_sizes"]:
        lines.append(f"| {point['files']} × {point['size']} B | {point['pilot_wall']:.3g} | {point['tar_wall']:.3g}"
                     f" | {1000 * point['pilot_per_file']:.3g} | {1000 * point['overhead_per_file']:.3g} |")
    flat = doc.get("flatness_100_to_10000")
    lines += ["", "Per-file cost at 10,000 files over that at 100 files (point 4, at most 2): "
              + ("not measured" if flat is None else f"{flat:.2f} ({'met' if flat <= 2 else 'MISSED'})"), ""]
    return "\n".join(lines)


def plot(doc: dict, png: Path) -> Optional[Path]:
    """Seconds per file against the number of files, pilot and tar (None without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    files = [p["files"] for p in doc["curve_files"]]
    for key, label in (("pilot_per_file", "pilot archive"), ("tar_per_file", "tar czf")):
        ax.loglog(files, [p[key] for p in doc["curve_files"]], marker="o", label=label)
    ax.set_xlabel("files in the work dir (10 kB each)")
    ax.set_ylabel("seconds per file")
    ax.set_title("log archive: cost per file")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 round: checks that it runs")
    parser.add_argument("--rounds", type=int, help="rounds per point (default 3; 1 with --smoke)")
    parser.add_argument("--out", help="base name of the .json/.md/.png (default bench/work/results/log-<stamp>)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.smoke else 3)
    logging.getLogger("pilot").setLevel(logging.ERROR)  # one "left out" line per round is expected noise
    root = WORK / "logbench"
    doc = run(root, args.smoke, rounds)
    base = Path(args.out) if args.out else WORK / "results" / f"log-{time.strftime('%Y%m%d-%H%M%S')}"
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    base.with_suffix(".md").write_text(markdown(doc))
    plot(doc, base.with_suffix(".png"))
    print(markdown(doc))
    print(f"raw: {base.with_suffix('.json')}")
    return 0 if not doc["target"]["escaped"] else 1


if __name__ == "__main__":
    sys.exit(main())
