"""The pilot's own CPU benchmark as a service: one process per payload core, a results dictionary.

Each worker process repeats a fixed unit of work for ``duration`` seconds: integer bit mixing
(xorshift), floating point (square roots and sines) and container work (a dict built and sorted),
the kinds of operations HEP software spends its time on. A worker reports how many units it
finished and the CPU time it used. The score is units per second of wall time summed over the
workers (``score``), and per worker (``score_per_core``); ``cpu_efficiency`` tells how much of the
cores the workers really got (1.0 = every worker had a core of its own).

The workers are started by the command runner (:mod:`pilot.util.commandrunner`) in their own session
(the pilot signals only what it started) and stopped as a tree if they overrun. Usage::

    bench = Benchmark(cores=4, duration=10, context={"job": job, "queue": "SITE_QUEUE"})
    results = bench.run()         # the dictionary, pilot fields added, removed fields left out
    bench.write("benchmark_results.json")
    bench.post("https://collector.example.org/benchmarks")   # JSON POST through the pilot's HTTP client

The fields the pilot adds (``[Benchmark] add_fields``) come from the worker node, the batch slot and
the job (:data:`PILOT_FIELDS`); ``[Benchmark] remove_fields`` names fields left out of the
dictionary (by default the per-process details). ``[Benchmark] url`` is where :meth:`post` sends it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Optional

from pilot.util.config import config
from pilot.util.constants import PILOT_VERSION
from pilot.util.filehandling import write_json_atomic
from pilot.util.commandrunner import CommandProcess

from .services import Services

logger = logging.getLogger(__name__)

NAME = "pilot-cpu"
VERSION = 1
_MASK = (1 << 64) - 1
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_ADD = ("timestamp", "hostname", "cpu_model", "cores_on_node", "pilot_version", "batch_system",
               "batch_job_id", "PandaID", "taskID", "queue")
DEFAULT_REMOVE = ("processes",)
#: bytes of stdout/stderr kept from one worker (it prints one JSON line)
WORKER_OUTPUT = 1 << 20


# ---------------------------------------------------------------------------- the work
def work_unit(seed: int) -> int:
    """One unit of work; returns a checksum so nothing can be optimised away."""
    x = (seed * 0x9E3779B97F4A7C15 + 1) & _MASK
    acc = 0
    for _ in range(1500):
        x ^= (x << 13) & _MASK
        x ^= x >> 7
        x ^= (x << 17) & _MASK
        acc = (acc + (x & 0xFFFF)) & _MASK
    total = 0.0
    for i in range(1, 400):
        total += math.sqrt(i + (x & 7)) * math.sin(i)
    table = {(x >> (i % 48)) & 0xFFF: i for i in range(300)}
    ordered = sorted(table.items(), key=lambda kv: (kv[1] * 7919) % 311)
    return (acc + int(abs(total) * 1000) + ordered[0][0]) & _MASK


def worker(duration: float, seed: int = 1) -> dict:
    """Repeat :func:`work_unit` for ``duration`` seconds (wall): units done, CPU and wall seconds."""
    start_wall, start_cpu = time.monotonic(), time.process_time()
    deadline = start_wall + max(0.0, duration)
    units, checksum = 0, 0
    while True:
        for _ in range(5):
            checksum ^= work_unit(seed + units)
            units += 1
        if time.monotonic() >= deadline:
            break
    wall, cpu = time.monotonic() - start_wall, time.process_time() - start_cpu
    return {"units": units, "wall_seconds": round(wall, 4), "cpu_seconds": round(cpu, 4),
            "score": round(units / wall, 3) if wall > 0 else 0.0, "checksum": checksum}


# ---------------------------------------------------------------------------- pilot fields
def _cpu_model() -> str:
    from pilot.util.workernode import read_cpuinfo

    return read_cpuinfo().get("model name", "unknown")


def pilot_fields(context: Optional[dict] = None) -> Dict[str, Callable[[], Any]]:
    """The fields the pilot can add: name -> function giving the value (None = leave out)."""
    context = context or {}
    job = context.get("job")

    def batch(index: int) -> Callable[[], Any]:
        def value() -> Any:
            from pilot.util.batch import detect

            return detect()[index] or None
        return value

    return {
        "timestamp": lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "hostname": lambda: socket.getfqdn() or socket.gethostname(),
        "cpu_model": _cpu_model,
        "cores_on_node": lambda: os.cpu_count(),
        "pilot_version": lambda: PILOT_VERSION,
        "python_version": lambda: sys.version.split()[0],
        "batch_system": batch(0),
        "batch_job_id": batch(1),
        "PandaID": lambda: (getattr(job, "jobid", None) or context.get("pandaid")),
        "taskID": lambda: (getattr(job, "taskid", None) or context.get("taskid")),
        "queue": lambda: context.get("queue") or os.environ.get("PANDA_SITE_NAME") or None,
        "harvester_worker_id": lambda: os.environ.get("HARVESTER_WORKER_ID") or None,
        "mpi_rank": lambda: context.get("mpi_rank"),
    }


#: names of the fields the pilot can add
PILOT_FIELDS = tuple(pilot_fields())


def _names(value: Any, default: Iterable[str]) -> List[str]:
    if value is None:
        return list(default)
    if isinstance(value, str):
        return [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]
    return [str(v) for v in value]


# ---------------------------------------------------------------------------- the service
class Benchmark(Services):
    """Run the CPU benchmark with ``cores`` processes and build the results dictionary."""

    def __init__(self, *args: Any, cores: Optional[int] = None, duration: Optional[float] = None,
                 context: Optional[dict] = None, add_fields: Any = None, remove_fields: Any = None,
                 url: Optional[str] = None, http: Any = None) -> None:
        section = "Benchmark"
        job = (context or {}).get("job")
        self.cores = max(1, int(cores or getattr(job, "corecount", 0) or 1))
        self.duration = float(duration if duration is not None else config.get(section, "duration", 10) or 10)
        self.context = dict(context or {})
        self.add_fields = _names(add_fields if add_fields is not None else config.get(section, "add_fields", None),
                                 DEFAULT_ADD)
        self.remove_fields = _names(remove_fields if remove_fields is not None
                                    else config.get(section, "remove_fields", None), DEFAULT_REMOVE)
        self.url = url if url is not None else str(config.get(section, "url", "") or "")
        self.http = http
        self.results: dict = {}

    def command(self) -> list:
        """The command line of one worker process."""
        return [sys.executable, "-m", "pilot.api.benchmark", "--worker", str(self.duration)]

    def run(self) -> dict:
        """Run the workers (one per core) and return the results dictionary."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO_ROOT, env.get("PYTHONPATH", "")) if p)
        start = time.monotonic()
        procs = []
        for index in range(self.cores):
            proc = CommandProcess(self.command() + ["--seed", str(index + 1)], env=env, max_output=WORKER_OUTPUT)
            proc.start()
            procs.append(proc)
        reports = [self._collect(proc, start + self.duration + 60.0) for proc in procs]
        wall = time.monotonic() - start
        self.results = self.build(reports, wall)
        logger.info("benchmark %s: score %.1f with %d process(es) (%.0f%% CPU efficiency)", NAME,
                    self.results.get("score", 0.0) or 0.0, self.cores,
                    100 * (self.results.get("cpu_efficiency") or 0.0))
        return self.results

    @staticmethod
    def _collect(proc: CommandProcess, deadline: float) -> dict:
        result = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        out, err = result.stdout, result.stderr
        if result.timed_out:
            return {"error": "the worker did not finish in time"}
        if result.exit_code != 0:
            return {"error": f"the worker failed ({result.exit_code}): {err.strip()[-300:]}"}
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"error": f"unreadable worker output: {out[-200:]!r}"}

    def build(self, reports: list, wall: float) -> dict:
        """The results dictionary from the worker reports: scores, then pilot fields, minus removed ones."""
        good = [r for r in reports if "error" not in r]
        cpu = sum(r["cpu_seconds"] for r in good)
        busy = sum(r["wall_seconds"] for r in good)
        results: dict = {
            "benchmark": NAME,
            "version": VERSION,
            "ncores": self.cores,
            "duration": self.duration,
            "valid": len(good) == len(reports) and bool(reports),
            "score": round(sum(r["score"] for r in good), 3),
            "score_per_core": round(sum(r["score"] for r in good) / len(good), 3) if good else 0.0,
            "cpu_seconds": round(cpu, 3),
            "wall_seconds": round(wall, 3),
            "cpu_efficiency": round(cpu / busy, 3) if busy > 0 else 0.0,
            "processes": reports,
        }
        errors = [r["error"] for r in reports if "error" in r]
        if errors:
            results["errors"] = errors
        fields = pilot_fields(self.context)
        for name in self.add_fields:
            getter = fields.get(name)
            if getter is None:
                logger.warning("benchmark: unknown pilot field %r (known: %s)", name, ", ".join(PILOT_FIELDS))
                continue
            try:
                value = getter()
            except Exception as exc:  # a missing fact must not lose the score
                logger.warning("benchmark: cannot add %s: %s", name, exc)
                continue
            if value is not None:
                results[name] = value
        for name in self.remove_fields:
            results.pop(name, None)
        return results

    def get_results(self) -> dict:
        return dict(self.results)

    def write(self, path: str) -> str:
        """Write the results as JSON (atomically); returns the path."""
        write_json_atomic(path, self.results, indent=1)
        return path

    def post(self, url: Optional[str] = None, http: Any = None) -> Any:
        """POST the results as JSON to ``url`` (default ``[Benchmark] url``); returns the decoded reply."""
        target = url or self.url
        if not target:
            raise ValueError("no URL to post the benchmark results to ([Benchmark] url is empty)")
        client = http or self.http
        if client is None:
            from pilot.util.https import shared_client

            client = shared_client()
        logger.info("posting the benchmark results to %s", target)
        return client.post_json(target, self.results, timeout=60, retries=3)


def main(argv: Optional[list] = None) -> int:
    """``python -m pilot.api.benchmark [--worker SECONDS [--seed N]] | [--cores N --duration S]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pilot.api.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--worker", type=float, default=None, help="run one worker for this many seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cores", type=int, default=None, help="number of worker processes")
    parser.add_argument("--duration", type=float, default=None, help="seconds per worker")
    parser.add_argument("--post", default="", help="POST the results to this URL")
    opts = parser.parse_args(argv)
    if opts.worker is not None:
        print(json.dumps(worker(opts.worker, opts.seed)), flush=True)
        return 0
    bench = Benchmark(cores=opts.cores or os.cpu_count() or 1, duration=opts.duration)
    print(json.dumps(bench.run(), indent=1))
    if opts.post:
        bench.post(opts.post)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
