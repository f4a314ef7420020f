"""The bench scenarios and the measurement of one pilot run against the dev server.

Timestamps all come from outside the pilots, on one clock: process start and exit (harness), getJob
and the final updateJob (the dev server's request records), payload start and end (written by the
payload script), and the end of stage-out (inode change time of the last output or log file at its
destination: the launch directory for the references' mv tool, the storage for ours).
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from . import WORK
from .jobs import SCOPE, InputFile, Storage, job_definition, read_stamps, rucio_path
from .measure import ProcessResult, launch
from .pilots import PILOTS, QUEUE, Pilot, command, config_text
from . import stageout
from .stageout import OUT_STORAGES, out_sizes
from .xrdstorage import RSE, XrdStorage, scratch_dir

logger = logging.getLogger("pilotbench")

INFO_METHODS = {"schedconfig", "queuedata", "cric_queues", "cric_storages", "storagedata"}


@dataclass(frozen=True)
class Scenario:
    """One kind of run, repeated for each pilot."""

    key: str
    title: str
    seconds: float
    inputs: str = "script"      # script | small | large
    njobs: int = 1
    timefloor: int = 0          # minutes
    pilots: tuple = ("pilot2", "pilot3", "ours")
    timeout: float = 600
    storage: str = "local"      # local (LOCAL_DISK, mv) | xrd (PILOT_XRD through Rucio, xrdcp)
    min_runs: int = 0           # at least this many runs, whatever --runs says
    outputs: str = "none"       # none | small | large: extra outputs the payload writes (stage-out scenarios)
    out_storage: str = ""       # xrd | davs | rucio: where outputs and log go (stageout.OUT_STORAGES); "" = mv


SCENARIOS = {
    "a": Scenario("a", "one job, one input, 5 s payload", 5, timeout=300),
    "b": Scenario("b", "one job, 60 s payload", 60, timeout=420),
    "c-base": Scenario("c-base", "stage-in baseline: one input, 1 s payload", 1, timeout=300,
                       pilots=("pilot2", "pilot3", "ours", "ours-link")),
    "c-small": Scenario("c-small", "stage-in of 200 x 10 kB", 1, inputs="small", timeout=600,
                        pilots=("pilot2", "pilot3", "ours", "ours-link")),
    "c-large": Scenario("c-large", "stage-in of 5 x 200 MB", 1, inputs="large", timeout=900,
                        pilots=("pilot2", "pilot3", "ours", "ours-link")),
    "x-base": Scenario("x-base", "xrdcp stage-in baseline: one input, 1 s payload", 1, timeout=300,
                       storage="xrd"),
    "x-small": Scenario("x-small", "xrdcp stage-in of 200 x 10 kB", 1, inputs="small", timeout=600,
                        storage="xrd"),
    # the copies take 2-3 s and vary by +-0.4 s from run to run, against overheads of 0-0.3 s per file
    "x-large": Scenario("x-large", "xrdcp stage-in of 5 x 200 MB", 1, inputs="large", timeout=900,
                        storage="xrd", min_runs=5),
    # stage-out with real copies (issue 21 point 1): o = xrdcp to XRootD, w = gfal-copy to WebDAV (nginx),
    # u = Rucio upload to XRootD; inputs: the script alone, linked by mv as in a
    **{f"{kind}-{suffix}": Scenario(f"{kind}-{suffix}", f"{title} stage-out of {what}", 1, outputs=size,
                                    timeout=900, out_storage=store, min_runs=5 if size == "large" else 0)
       for kind, store, title in (("o", "xrd", "xrdcp"), ("w", "davs", "gfal WebDAV"), ("u", "rucio", "Rucio upload"))
       for suffix, size, what in (("base", "none", "the output and log alone"), ("small", "small", "200 x 10 kB"),
                                  ("large", "large", "5 x 200 MB"))},
    "d": Scenario("d", "20 short jobs (1 s payload) in one multi-job pilot", 1, njobs=20, timefloor=60,
                  timeout=1500),
}
SMALL = (200, 10 * 1024)
LARGE = (5, 200 * 1024 * 1024)


def _inputs(storage: Storage, kind: str) -> list[InputFile]:
    files = [storage.script()]
    if kind == "small":
        files += storage.data_files(SMALL[0], SMALL[1], "small")
    elif kind == "large":
        files += storage.data_files(LARGE[0], LARGE[1], "large")
    return files


def _prepare_server(server: Any, scenario: Scenario, pilot: Pilot, xrd: Optional[XrdStorage]) -> None:
    """Empty the server's records and give the queue this run's settings."""
    server.reset("all")
    settings: dict = {}
    if scenario.storage == "xrd":
        assert xrd is not None
        server.set_storagedata(RSE, xrd.storage_entry(), merge=False)
        settings.update(xrd.queue_settings())
    if scenario.timefloor:
        settings["timefloor"] = scenario.timefloor
    if scenario.out_storage:
        assert xrd is not None
        out = OUT_STORAGES[scenario.out_storage]
        server.set_storagedata(out.rse, stageout.storage_entry(out, xrd.env), merge=False)
        settings.update(stageout.queue_settings(out))
    if pilot.mv_mode:
        settings["copytools"] = {"mv": {"setup": "", "copy_type": pilot.mv_mode}}
    if settings:
        server.set_queuedata(QUEUE, settings)


def _stageout_end(job: dict, launch_dir: Path, storage_root: Path, out_root: Optional[Path] = None
                  ) -> Optional[float]:
    """Inode change time of the last output/log file at its destination (None if none was found)."""
    times = []
    scope = job.get("scopeLog") or SCOPE
    for lfn in job["outFiles"].split(","):
        places = [launch_dir / lfn, storage_root / rucio_path(SCOPE, lfn)]
        if out_root is not None:
            places.insert(0, out_root / rucio_path(scope, lfn))
        for path in places:
            try:
                times.append(os.lstat(path).st_ctime)
                break
            except OSError:
                continue
    return max(times) if times else None


def _http(requests: list) -> dict:
    """Counts and body bytes of the recorded requests by kind."""
    out = {"panda": 0, "info": 0, "traces": 0, "bytes_in": 0, "bytes_out": 0, "methods": {},
           "bytes_in_by_kind": {"panda": 0, "info": 0, "traces": 0}, "bytes_in_by_method": {}}
    for req in requests:
        method = req["method"]
        kind = "traces" if method == "traces" else "info" if method in INFO_METHODS else "panda"
        out[kind] += 1
        out["methods"][method] = out["methods"].get(method, 0) + 1
        sent = req.get("bytes_in") or 0
        out["bytes_in"] += sent
        out["bytes_in_by_kind"][kind] += sent  # point 5 of issue 21: which requests carry the bytes
        out["bytes_in_by_method"][method] = out["bytes_in_by_method"].get(method, 0) + sent
        out["bytes_out"] += req.get("bytes_out") or 0
    out["total"] = out["panda"] + out["info"] + out["traces"]
    return out


def _job_timeline(server: Any, pandaid: int, job: dict, stamp: Path, requests: list, launch_dir: Path,
                  storage_root: Path, out_root: Optional[Path] = None) -> dict:
    """Timestamps of one job (seconds since the epoch; None when not seen)."""
    getjob = next((r["time"] for r in requests if r["method"] == "getJob" and r.get("result") == str(pandaid)), None)
    updates = server.updates(pandaid)
    final = next((u for u in updates if u["is_final"]), None)
    stamps = read_stamps(stamp)
    heartbeats = [u["time"] for u in updates if not u["is_final"]]
    placed = [stamps["ctimes"][lfn] for lfn in job["inFiles"].split(",") if lfn in stamps["ctimes"]]
    return {"pandaid": pandaid, "getjob": getjob, "payload_start": stamps["start"], "payload_end": stamps["end"],
            "payload_cpu": stamps["cpu"], "stageout_end": _stageout_end(job, launch_dir, storage_root, out_root),
            "final": final["time"] if final else None, "state": final["state"] if final else None,
            "updates": len(updates), "heartbeat_times": heartbeats, "inputs_placed": len(placed),
            "first_input": min(placed) if placed else None, "last_input": max(placed) if placed else None}


def _phases(proc: ProcessResult, tl: dict) -> dict:
    """Durations of the phases of a single-job run."""
    def span(a: Optional[float], b: Optional[float]) -> Optional[float]:
        return None if a is None or b is None else b - a
    return {"getjob": span(proc.start, tl["getjob"]), "stagein": span(tl["getjob"], tl["payload_start"]),
            "payload": span(tl["payload_start"], tl["payload_end"]),
            "stageout": span(tl["payload_end"], tl["stageout_end"]), "final": span(tl["stageout_end"], tl["final"]),
            "exit": span(tl["final"], proc.end)}


def _window(samples: list, start: Optional[float], end: Optional[float]) -> dict:
    """Pilot CPU rate and RSS while the payload runs (margins of 1 s at both ends)."""
    if start is None or end is None:
        return {}
    inside = [s for s in samples if start + 1 <= s.t <= end - 1 and s.payload_procs]
    if len(inside) < 2:
        return {}
    first, last = inside[0], inside[-1]
    rate = (last.pilot_cpu - first.pilot_cpu) / (last.t - first.t)
    return {"cpu_per_min": 60 * rate, "rss_median_mb": statistics.median(s.pilot_rss_kb for s in inside) / 1024,
            "rss_max_mb": max(s.pilot_rss_kb for s in inside) / 1024,
            "threads_median": statistics.median(s.root_threads for s in inside)}


def _clean_launch_dir(launch_dir: Path, keep: Path) -> None:
    """Keep the pilot's logs, drop everything else (inputs, outputs, job dirs)."""
    keep.mkdir(parents=True, exist_ok=True)
    for name in ("pilotlog.txt", "pilot.stdout"):
        # ours (without -a) logs in its own PanDA_Pilot2_* dir inside the launch dir
        found = [launch_dir / name] + sorted(launch_dir.glob(f"PanDA_Pilot2_*/{name}"))
        for path in found:
            if path.exists():
                shutil.copy(path, keep / name)
                break
    shutil.rmtree(launch_dir, ignore_errors=True)


def run_once(server: Any, storage: Storage, scenario: Scenario, pilot: Pilot, rundir: Path,
             xrd: Optional[XrdStorage] = None) -> dict:
    """One pilot run of a scenario; returns its measurements."""
    _prepare_server(server, scenario, pilot, xrd)
    inputs = _inputs(storage, scenario.inputs)
    endpoint_in, scope_in = "LOCAL_DISK", SCOPE
    if scenario.storage == "xrd":
        assert xrd is not None
        scope_in = xrd.scope_for(inputs)
        xrd.publish(inputs, scope_in)
        endpoint_in = RSE
    # x: the job's work dir (where the copies land) on tmpfs, so that the disk's write-back, which varies by
    # a factor of two between identical copies on this kind of machine, does not drown the pilots' overhead
    launch_dir = (scratch_dir() / f"{scenario.key}-{pilot.key}" if scenario.storage == "xrd" else rundir) / "launch"
    shutil.rmtree(launch_dir, ignore_errors=True)
    stamps = rundir / "stamps"
    shutil.rmtree(rundir, ignore_errors=True)
    launch_dir.mkdir(parents=True)
    stamps.mkdir(parents=True)
    # a root pilot of ours runs its payload as [Payload] payload_user (nobody): the stamps must still be written
    os.chmod(stamps, 0o777)
    for f in inputs if scenario.storage == "local" else ():
        # what the references' mv tool links from: inputs placed next to the pilot (aCT model)
        os.link(f.path, launch_dir / f.lfn)
    extra, size, endpoint_out, scope_out, out_root = 0, 0, "LOCAL_DISK", SCOPE, None
    if scenario.out_storage:
        assert xrd is not None
        out = OUT_STORAGES[scenario.out_storage]
        extra, size = out_sizes()[scenario.outputs]
        endpoint_out, scope_out, out_root = out.rse, stageout.OUT_SCOPE, out.directory(xrd.env)
    jobs = {}
    for i in range(scenario.njobs):
        job = job_definition(inputs, stamps / f"job{i:02d}.txt", scenario.seconds, pilot.via_bash, endpoint_in,
                             scope_in, extra_outputs=extra, output_size=size, endpoint_out=endpoint_out,
                             scope_out=scope_out)
        jobs[server.submit(job)] = (job, stamps / f"job{i:02d}.txt")
    cfg = rundir / "pilot.cfg"
    # Rucio upload: Pilot 3's rucio copytool talks to the server of its [Rucio] host (packaged: ATLAS's), not to
    # the one of RUCIO_CONFIG; the loopback Rucio for every pilot
    extra_cfg = {"Rucio": {"host": xrd.env["STORAGE_RUCIO_URL"]}} if scenario.out_storage and xrd else None
    cfg.write_text(config_text(pilot, server.url, server.https_url, extra_cfg))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(HARVESTER_PILOT_CONFIG=str(cfg), X509_USER_PROXY=server.info["proxy"],
               X509_CERT_DIR=server.info["certdir"])
    if scenario.storage == "xrd" or scenario.out_storage:
        assert xrd is not None
        env.update(xrd.pilot_env())
    if scenario.out_storage:
        assert xrd is not None
        env.update(stageout.pilot_env(OUT_STORAGES[scenario.out_storage], xrd.env, server.info["certdir"],
                                      WORK / "certdir-merged"))
    cmd = command(pilot, server.https_url, scenario.njobs if scenario.njobs > 1 else None)
    logger.info("%s %s: %s", scenario.key, pilot.key, " ".join(map(str, cmd)))
    os.sync()  # the previous run's (or file set-up's) writes must not be flushed during this one
    load = os.getloadavg()[0]
    proc = launch(cmd, launch_dir, env, launch_dir / "pilot.stdout", scenario.timeout)
    requests = server.requests()
    storage_root = Path(server.storage_dir)
    timelines = [_job_timeline(server, pid, job, stamp, requests, launch_dir, storage_root, out_root)
                 for pid, (job, stamp) in sorted(jobs.items())]
    _clean_launch_dir(launch_dir, rundir / "logs")
    result = summarize(scenario, pilot, proc, timelines, requests, len(inputs))
    if scenario.out_storage:
        assert xrd is not None
        result["stageout_outputs"] = extra
        for job, _ in jobs.values():
            stageout.remove_outputs(OUT_STORAGES[scenario.out_storage], xrd.env, job["outFiles"].split(","),
                                    scope_out)
    result["loadavg_before"] = load
    return result


def summarize(scenario: Scenario, pilot: Pilot, proc: ProcessResult, timelines: list, requests: list,
              ninputs: int) -> dict:
    """The numbers of one run."""
    done = [tl for tl in timelines if tl["state"] == "finished"]
    payload_cpu = sum(tl["payload_cpu"] for tl in timelines)
    samples = proc.samples
    result: dict[str, Any] = {
        "scenario": scenario.key, "pilot": pilot.key, "exit_status": proc.exit_status, "timed_out": proc.timed_out,
        "jobs": len(timelines), "finished": len(done), "inputs": ninputs, "wall": proc.end - proc.start,
        "cpu_total": proc.cpu, "cpu_payload": payload_cpu, "cpu_pilot": proc.cpu - payload_cpu,
        "cpu_pilot_per_job": (proc.cpu - payload_cpu) / max(1, len(timelines)),
        "peak_rss_mb": max((s.root_rss_kb for s in samples), default=0) / 1024,
        "peak_tree_rss_mb": max((s.pilot_rss_kb for s in samples), default=0) / 1024,
        "max_threads": max((s.root_threads for s in samples), default=0),
        "max_procs": max((s.pilot_procs for s in samples), default=0),
        "http": _http(requests),
    }
    result["http_per_job"] = result["http"]["total"] / max(1, len(timelines))
    if len(timelines) == 1:
        tl = timelines[0]
        result["phases"] = _phases(proc, tl)
        result["start_to_payload"] = None if tl["payload_start"] is None else tl["payload_start"] - proc.start
        result["payload_end_to_exit"] = None if tl["payload_end"] is None else proc.end - tl["payload_end"]
        result["stagein"] = result["phases"]["stagein"]
        if tl["first_input"] is not None and tl["inputs_placed"] > 1:
            # from the first to the last input file put in place in the job's work dir
            result["stagein_span"] = tl["last_input"] - tl["first_input"]
            result["stagein_per_file"] = result["stagein_span"] / (tl["inputs_placed"] - 1)
            result["inputs_placed"] = tl["inputs_placed"]
        if tl["first_input"] is not None and tl["getjob"] is not None:
            result["getjob_to_first_input"] = tl["first_input"] - tl["getjob"]
            result["getjob_to_last_input"] = tl["last_input"] - tl["getjob"]
        result["window"] = _window(samples, tl["payload_start"], tl["payload_end"])
        beats = [t for t in tl["heartbeat_times"]
                 if tl["payload_start"] and tl["payload_end"] and tl["payload_start"] <= t <= tl["payload_end"]]
        result["heartbeats_during_payload"] = len(beats)
        result["updates"] = tl["updates"]
    else:
        finals = [tl["final"] for tl in done]
        payload_time = sum(tl["payload_end"] - tl["payload_start"] for tl in done
                           if tl["payload_end"] and tl["payload_start"])
        if finals:
            span = max(finals) - proc.start
            result["multi"] = {"span": span, "jobs_per_min": 60 * len(done) / span,
                               "overhead_per_job": (span - payload_time) / len(done),
                               "tail": proc.end - max(finals)}
    return result


def _plain_xrdcp(xrd: XrdStorage, storage: Storage, scenario: Scenario) -> tuple:
    """(bare xrdcp, xrdcp --cksum adler32:print) of the scenario's inputs into the scratch tmpfs, in seconds."""
    files = _inputs(storage, scenario.inputs)
    return (xrd.plain_copy_seconds(files, scratch_dir() / "plain", checksum=False),
            xrd.plain_copy_seconds(files, scratch_dir() / "plain", checksum=True))


def _plain_out(xrd: XrdStorage, scenario: Scenario) -> float:
    """The plain tool's time to copy files of the scenario's extra outputs' number and size to its storage."""
    out = OUT_STORAGES[scenario.out_storage]
    count, size = out_sizes()[scenario.outputs]
    paths = stageout.local_files(scratch_dir() / "plain-out", count, size)
    try:
        return stageout.plain_copy_seconds(out, xrd.env, paths)
    finally:
        shutil.rmtree(scratch_dir() / "plain-out", ignore_errors=True)


def plain_copy_seconds(files: list[InputFile], target: Path) -> float:
    """Time of ``cp`` of the same files (the raw byte-copy cost a real-copy stage-in cannot avoid)."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    os.sync()
    start = time.monotonic()
    subprocess.run(["cp", *[f.path for f in files], str(target)], check=True)
    elapsed = time.monotonic() - start
    shutil.rmtree(target, ignore_errors=True)
    return elapsed


def run_scenario(server: Any, storage: Storage, scenario: Scenario, runs: int, pilots: Optional[tuple] = None,
                 xrd: Optional[XrdStorage] = None) -> list:
    """``runs`` rounds of the scenario, every pilot once per round (order rotated each round)."""
    keys = list(pilots or scenario.pilots)
    results = []
    for i in range(runs if os.environ.get("PILOTBENCH_SMOKE") else max(runs, scenario.min_runs)):
        order = keys[i % len(keys):] + keys[:i % len(keys)]
        for key in order:
            rundir = WORK / "runs" / scenario.key / f"{key}-{i}"
            started = time.monotonic()
            plain: list = []
            if scenario.out_storage:
                assert xrd is not None
                plain.append(_plain_out(xrd, scenario))
            elif scenario.storage == "xrd":
                # every pilot copies here: the raw xrdcp time of the same files (x-base: the script alone),
                # right before and right after its run, without and with the checksum the pilots ask for
                assert xrd is not None
                plain.append(_plain_xrdcp(xrd, storage, scenario))
            result = run_once(server, storage, scenario, PILOTS[key], rundir, xrd)
            result["run"] = i
            if scenario.out_storage and plain:
                assert xrd is not None
                plain.append(_plain_out(xrd, scenario))
                result["plain_copies"] = plain
                result["plain_copy"] = statistics.mean(plain)
            elif xrd is not None and plain:
                plain.append(_plain_xrdcp(xrd, storage, scenario))
                result["plain_copies"] = [bare for bare, _ in plain]
                result["plain_copy"] = statistics.mean(bare for bare, _ in plain)
                result["plain_copies_cksum"] = [checked for _, checked in plain]
                result["plain_copy_cksum"] = statistics.mean(checked for _, checked in plain)
            elif scenario.inputs != "script" and key == "ours":
                result["plain_copy"] = plain_copy_seconds(_inputs(storage, scenario.inputs), WORK / "cp-baseline")
            logger.info("%s %s run %d: %.1f s wall, %d/%d jobs finished (%.0f s)", scenario.key, key, i,
                        result["wall"], result["finished"], result["jobs"], time.monotonic() - started)
            results.append(result)
    return results
