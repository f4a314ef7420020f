"""Stage-out with real copies (issue 21, point 1): outputs written by the payload, copied to a loopback storage.

Scenarios ``o-*`` copy every output and the log with ``xrdcp`` to the XRootD RSE ``PILOT_XRD``
(``root://``), ``w-*`` with ``gfal-copy`` to the same server's WebDAV (XrdHttp, ``davs://``: the nginx RSE
``PILOT_DAVS`` has no checksums, which every pilot's gfal tool asks for), ``u-*`` with
the ``rucio`` copytool (Rucio upload) to ``PILOT_XRD``: the same queue settings for all three pilots. The inputs
are the script alone, linked by ``mv`` as in scenario a. The payload writes, besides its usual output, ``n``
extra outputs of ``size`` random bytes (``<output>.000`` ...): none in ``*-base``, 200 × 10 kB in ``*-small``,
5 × 200 MB in ``*-large``.

Stage-out time is payload end → the last output or log in place on the storage (inode change time in the RSE's
directory, which the loopback servers share with the bench). The raw copy cost is the plain tool copying files of
the same number and size from the scratch tmpfs to the same storage, right before and right after each pilot's
run, the faster of one process per file (up to 20 files) and one call for all (``xrdcp --parallel --infiles``,
``gfal-copy --from-file``). The overhead per extra output is
[(stage-out, N outputs − base) − (plain copy, N files − none)] / N.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .install import VENV_OURS
from .jobs import rucio_path

SMALL_OUT = (200, 10 * 1024)
LARGE_OUT = (5, 200 * 1024 * 1024)
#: the sizes of a smoke run (``--smoke`` sets $PILOTBENCH_SMOKE): it proves the scenario runs, no figure counts
SMOKE_OUT = {"none": (0, 0), "small": (5, 1024), "large": (2, 1024 * 1024)}
#: the scope outputs are written in: one of the loopback Rucio's scopes (Rucio upload needs an existing one)
OUT_SCOPE = "tests"


@dataclass(frozen=True)
class OutStorage:
    """One stage-out target of the loopback storage."""

    key: str            # xrd | davs | rucio
    rse: str
    copytool: str       # the queue's copytool name for pw/pl
    scheme: str         # root | davs
    port_var: str       # STORAGE_* variable holding the port
    prefix: str         # path prefix on the server
    subdir: str         # directory under $STORAGE_DATA

    def url(self, env: dict) -> str:
        return f"{self.scheme}://{env['STORAGE_HOST']}:{env[self.port_var]}"

    def directory(self, env: dict) -> Path:
        return Path(env["STORAGE_DATA"]) / self.subdir


OUT_STORAGES = {
    "xrd": OutStorage("xrd", "PILOT_XRD", "xrdcp", "root", "STORAGE_XROOTD_PORT", "//rucio/xrd/", "rucio/xrd"),
    # WebDAV of the XRootD server (XrdHttp, same port): the nginx RSE PILOT_DAVS has no checksums, and every
    # pilot's gfal tool asks for the destination's adler32 (-K), which nginx fails (gfal-copy exit 38)
    "davs": OutStorage("davs", "PILOT_XRD", "gfal", "davs", "STORAGE_XROOTD_PORT", "/rucio/xrd/", "rucio/xrd"),
    "rucio": OutStorage("rucio", "PILOT_XRD", "rucio", "root", "STORAGE_XROOTD_PORT", "//rucio/xrd/", "rucio/xrd"),
}


def out_sizes() -> dict:
    """(count, bytes) of the extra outputs per scenario size (tiny ones in a smoke run)."""
    if os.environ.get("PILOTBENCH_SMOKE"):
        return dict(SMOKE_OUT)
    return {"none": (0, 0), "small": SMALL_OUT, "large": LARGE_OUT}


def pilot_env(out: OutStorage, env: dict, server_certdir: str, merged: Path) -> dict:
    """What a pilot needs for the storage's copytools: gfal's Python, and a CA dir trusting both the dev
    server's CA and the storage's (X509_CERT_DIR is one directory; the two CAs are linked into ``merged``).

    Over davs the XRootD server checks the client's certificate against its CAs: the pilot gets the storage's
    proxy there (the dev server asks for no client certificate, so its PEM is only needed for its CA, which
    ``merged`` holds)."""
    merged.mkdir(parents=True, exist_ok=True)
    for source in (Path(server_certdir), Path(env["STORAGE_PKI"]) / "certificates"):
        for entry in source.iterdir():
            link = merged / entry.name
            if not link.exists():
                os.symlink(entry.resolve(), link)
    extra = {"X509_USER_PROXY": str(Path(env["STORAGE_PKI"]) / "x509up")} if out.scheme == "davs" else {}
    return {"X509_CERT_DIR": str(merged), "GFAL_PYTHONBIN": "/usr/bin/python3", **extra}


def output_names(out: str, n: int) -> list:
    """The extra outputs' names the payload script writes (``<out>.000`` ...)."""
    return [f"{out}.{i:03d}" for i in range(n)]


def storage_entry(out: OutStorage, env: dict) -> dict:
    """CRIC-style storage data of the RSE for the dev server."""
    flavour = {"root": "XROOTD", "davs": "WEBDAV"}[out.scheme]
    protocol = {"endpoint": out.url(env), "path": out.prefix, "flavour": flavour, "id": 3}
    activities = ("read_lan", "read_wan", "write_lan", "write_wan", "delete_lan", "delete_wan", "pr", "pw", "pl")
    return {"name": out.rse, "id": 3, "type": "DATADISK", "token": "", "is_deterministic": True,
            "state": "ACTIVE", "site": "DEV_SITE", "rc_site": "DEV_SITE", "is_tape": False, "resource": {},
            "arprotocols": {a: [dict(protocol)] for a in activities},
            "rprotocols": {"3": {**protocol, "activities": [[a, 1] for a in activities], "settings": {}}}}


def queue_settings(out: OutStorage) -> dict:
    """Inputs by mv (the script, linked as in scenario a), outputs and log by the storage's copytool."""
    return {"copytools": {out.copytool: {"setup": ""}, "mv": {"setup": ""}},
            "acopytools": {"pr": ["mv"], "pw": [out.copytool], "pl": [out.copytool], "pls": [out.copytool]},
            "astorages": {"pr": ["LOCAL_DISK"], "read_lan": ["LOCAL_DISK"], "pw": [out.rse], "pl": [out.rse],
                          "pls": [out.rse], "write_lan": [out.rse]}}


def placed_at(out: OutStorage, env: dict, lfn: str, scope: str = OUT_SCOPE) -> Path:
    """Where an output lands in the RSE's directory (deterministic path)."""
    return out.directory(env) / rucio_path(scope, lfn)


def remove_outputs(out: OutStorage, env: dict, lfns: list, scope: str = OUT_SCOPE) -> None:
    """Delete a run's outputs from the RSE's directory (1 GB per large run would fill the disk)."""
    for lfn in lfns:
        try:
            placed_at(out, env, lfn, scope).unlink()
        except OSError:
            pass


def local_files(scratch: Path, n: int, size: int) -> list:
    """``n`` random files of ``size`` bytes in ``scratch`` (the plain copy's sources); none for n = 0."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    paths = []
    for i in range(n):
        path = scratch / f"plain.{i:03d}.dat"
        with open(path, "wb") as handle:
            remaining = size
            while remaining:
                chunk = os.urandom(min(remaining, 1 << 22))
                handle.write(chunk)
                remaining -= len(chunk)
        paths.append(path)
    return paths


def plain_copy_seconds(out: OutStorage, env: dict, paths: list) -> float:
    """The plain tool's time to copy ``paths`` to the RSE (0 for no file); the copies are removed after."""
    if not paths:
        return 0.0
    tag = f"plain{os.getpid()}{int(time.time() * 1000)}"
    remote_dir = f"{out.url(env)}{out.prefix}bench-plain/{tag}"
    local_dir = out.directory(env) / "bench-plain" / tag
    cmd_env = {**os.environ, **env, "GFAL_PYTHONBIN": "/usr/bin/python3",
               "X509_CERT_DIR": str(Path(env["STORAGE_PKI"]) / "certificates"),
               "X509_USER_PROXY": str(Path(env["STORAGE_PKI"]) / "x509up")}
    best = float("inf")
    if out.key == "rucio":
        return _rucio_upload_seconds(paths, tag, cmd_env)
    try:
        if len(paths) <= 20 or out.scheme == "davs":  # gfal-copy --from-file wants a fresh dir: see below
            os.sync()
            start = time.monotonic()
            for path in paths:
                _run(_one_copy(out, path, f"{remote_dir}/serial/{path.name}"), cmd_env)
            best = time.monotonic() - start
        if out.scheme == "davs":
            return best  # gfal-copy --from-file into a new davs dir fails (HTTP 409 on the dir itself)
        listing = paths[0].parent / "plain-list.txt"
        listing.write_text("".join(f"file://{p}\n" if out.scheme == "davs" else f"{p}\n" for p in paths))
        os.sync()
        start = time.monotonic()
        _run(_bulk_copy(out, listing, f"{remote_dir}/bulk/", len(paths)), cmd_env)
        best = min(best, time.monotonic() - start)
    finally:
        shutil.rmtree(local_dir, ignore_errors=True)
    return best


def _rucio_upload_seconds(paths: list, tag: str, env: dict) -> float:
    """``rucio upload`` of the files (renamed uniquely: a name once registered in Rucio stays) in one call,
    as the plain tool of the Rucio-upload scenario; the CLI of the storage's client environment."""
    unique = []
    for path in paths:
        target = path.with_name(f"{tag}.{path.name}")
        path.rename(target)
        unique.append(target)
    rucio = VENV_OURS / "bin" / "rucio"  # rucio-clients 41.5.1, installed by the bench in every pilot's venv
    os.sync()
    start = time.monotonic()
    try:
        _run([str(rucio), "upload", "--rse", "PILOT_XRD", "--scope", OUT_SCOPE, *map(str, unique)], env)
        return time.monotonic() - start
    finally:
        remove_outputs(OUT_STORAGES["rucio"], env, [p.name for p in unique])


def _one_copy(out: OutStorage, path: Path, dest: str) -> list:
    if out.scheme == "davs":
        return ["gfal-copy", "-f", "-p", "-K", "adler32", f"file://{path}", dest]
    return ["xrdcp", "-s", "-f", "-p", "--cksum", "adler32:print", str(path), dest]


def _bulk_copy(out: OutStorage, listing: Path, dest_dir: str, n: int) -> list:
    if out.scheme == "davs":
        return ["gfal-copy", "-f", "-p", "-K", "adler32", "--from-file", str(listing), dest_dir]
    return ["xrdcp", "-s", "-f", "-p", "--cksum", "adler32:print", "--parallel", str(min(n, 8)), "--infiles",
            str(listing), dest_dir]


def _run(cmd: list, env: dict) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")


def run_overheads(results: list, scenario: str, pilot: str) -> dict:
    """Per run of ``scenario`` (``<kind>-small`` / ``-large``): seconds per extra output,
    [(stage-out − base's median) − (plain copy − base's median plain copy)] / N.

    Each stage-out run carries ``stageout_outputs`` (N, its extra outputs) and ``plain_copy`` (the plain tool's
    time for N files of the same size: 0 in the base). Runs whose job did not finish are left out.

    The plain copy subtracted is the median of every plain timing of the scenario (``plain_copies`` of all
    runs of all pilots: the same files with the same tool), not the run's own pair: on this machine kind one
    ``xrdcp --parallel --infiles`` call in three or so stalls for 30 s, a one-sided outlier that, paired with
    one pilot's run, swung its overhead by 150 ms per file either way (2026-12-07 run). Every pilot is
    measured against the same baseline.
    """
    def done(key: str) -> list:
        return [r for r in results if r["scenario"] == key and r["pilot"] == pilot
                and r.get("finished") == r.get("jobs") and (r.get("phases") or {}).get("stageout") is not None]

    kind = scenario.split("-")[0]
    base_runs = done(f"{kind}-base")
    if not base_runs:
        return {}
    base = statistics.median(r["phases"]["stageout"] for r in base_runs)
    base_plain = pooled_plain_copy(results, f"{kind}-base")
    plain = pooled_plain_copy(results, scenario)
    out = {}
    for r in done(scenario):
        n = r.get("stageout_outputs")
        if not n or plain is None:
            continue
        out[r.get("run", 0)] = ((r["phases"]["stageout"] - base) - (plain - (base_plain or 0.0))) / n
    return out


def pooled_plain_copy(results: list, scenario: str) -> Optional[float]:
    """The median of every plain-copy timing of ``scenario`` over all runs of all pilots (None: none)."""
    timings = []
    for r in results:
        if r["scenario"] == scenario:
            timings.extend(r.get("plain_copies") or ([r["plain_copy"]] if r.get("plain_copy") is not None else []))
    return statistics.median(timings) if timings else None
