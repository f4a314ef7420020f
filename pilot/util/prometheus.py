"""The pilot's own metrics in the Prometheus text format, in a file a node exporter collects.

Every ``[Pilot] metrics_interval`` seconds (and once more at the end) the pilot rewrites
``pilot_<pid>.prom`` in ``[Pilot] metrics_dir`` (empty: the pilot main work dir; ``off``: no file).
Point ``metrics_dir`` at the node exporter's textfile-collector directory
(``--collector.textfile.directory``) and every pilot on the node is scraped with the node. The file
is written to a temporary name in the same directory and renamed, so the collector never reads half
a file. Every sample carries the label ``pilot_pid`` so the files of several pilots on one node do
not clash; files of pilots that are gone are removed after ``metrics_keep`` seconds.

Metrics (labels in braces):

- ``pilot_info{queue,version,workflow,batch_system,batch_job_id,host}`` 1; ``pilot_running`` 1, 0 in
  the last file; ``pilot_start_time_seconds``; ``pilot_batch_slot_end_time_seconds`` when known;
- ``pilot_jobs_running``; ``pilot_jobs_completed_total``;
- ``pilot_job_phase_seconds{pandaid,phase}``: getjob, stagein, payload, stageout, setup (pilotTiming);
- ``pilot_transfer_files_total{direction,copytool,result}``, ``pilot_transfer_bytes_total``,
  ``pilot_transfer_seconds_total``, ``pilot_transfer_errors_total`` and
  ``pilot_transfer_rate_bytes_per_second`` (bytes over transfer time) ``{direction,copytool}``;
- ``pilot_server_requests_total{method}``, ``pilot_server_request_failures_total{method}``,
  ``pilot_server_request_duration_seconds{method}`` (summary: ``_sum``, ``_count``) and
  ``pilot_heartbeat_latency_seconds`` (the updateJob calls: heartbeats and final updates);
- ``pilot_payload_memory_kilobytes{pandaid,kind,stat}`` (rss, pss, vmem, swap; max, avg) and
  ``pilot_payload_cpu_seconds{pandaid}``;
- ``pilot_background_exceptions_total{activity}``: exceptions raised by each background activity
  and component of the pilot (:mod:`pilot.util.runner`; 0 for every activity that ran).

:class:`PilotMetrics` is the store the Data API reports each file transfer to; the rest is read from
the pilot's context when the file is written.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple

from pilot.util.filehandling import write_file_atomic
from pilot.util.runner import Activity
from pilot.util.runner import start as start_activity

if TYPE_CHECKING:
    from pilot.control.context import PilotContext

logger = logging.getLogger(__name__)

#: updateJob method names (legacy and REST) whose latency is the heartbeat latency
HEARTBEAT_METHODS = ("updateJob", "update_job")
#: the name of the writer's background activity (its thread)
WRITER_ACTIVITY = "metrics-writer"
_NAME_OK = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


# ---------------------------------------------------------------------------- text format
@dataclass
class Family:
    """One metric family: name, type (counter, gauge, summary), help and samples."""

    name: str
    kind: str
    help: str
    samples: List[Tuple[str, Dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, labels: Optional[Dict[str, Any]] = None, suffix: str = "") -> "Family":
        self.samples.append((suffix, {k: str(v) for k, v in (labels or {}).items()}, float(value)))
        return self


def escape_label(value: str) -> str:
    """A label value escaped for the text format (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def render(families: Iterable[Family], common: Optional[Dict[str, str]] = None) -> str:
    """The families in the Prometheus text exposition format (0.0.4); ``common`` labels on every sample."""
    lines: List[str] = []
    for family in families:
        if not _NAME_OK.match(family.name):
            raise ValueError(f"invalid metric name {family.name!r}")
        if not family.samples:
            continue
        lines.append(f"# HELP {family.name} {family.help.replace(chr(92), chr(92) * 2).replace(chr(10), ' ')}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for suffix, labels, value in family.samples:
            merged = dict(common or {}, **labels)
            text = ",".join(f'{k}="{escape_label(v)}"' for k, v in merged.items())
            lines.append(f"{family.name}{suffix}{{{text}}} {format_value(value)}" if text
                         else f"{family.name}{suffix} {format_value(value)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- the transfer store
@dataclass
class _Transfers:
    ok: int = 0
    failed: int = 0
    nbytes: int = 0
    seconds: float = 0.0


class PilotMetrics:
    """What the components report as it happens (file transfers); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.transfers: Dict[Tuple[str, str], _Transfers] = {}

    def observe_transfer(self, direction: str, copytool: str, nbytes: int, seconds: float, ok: bool) -> None:
        """One file moved (or not) by ``copytool``: stage-in or stage-out."""
        key = (direction, copytool or "unknown")
        with self._lock:
            totals = self.transfers.setdefault(key, _Transfers())
            if ok:
                totals.ok += 1
                totals.nbytes += max(0, int(nbytes or 0))
                totals.seconds += max(0.0, float(seconds or 0.0))
            else:
                totals.failed += 1

    def families(self) -> List[Family]:
        files = Family("pilot_transfer_files_total", "counter", "Files transferred, by direction, copytool and result")
        nbytes = Family("pilot_transfer_bytes_total", "counter", "Bytes transferred by the copytool")
        seconds = Family("pilot_transfer_seconds_total", "counter", "Seconds spent in successful transfers")
        errors = Family("pilot_transfer_errors_total", "counter", "Files the copytool failed to transfer")
        rate = Family("pilot_transfer_rate_bytes_per_second", "gauge",
                      "Average transfer rate of the copytool (bytes over transfer seconds)")
        with self._lock:
            items = [(k, _Transfers(**vars(v))) for k, v in sorted(self.transfers.items())]
        for (direction, tool), t in items:
            labels = {"direction": direction, "copytool": tool}
            files.add(t.ok, dict(labels, result="ok"))
            files.add(t.failed, dict(labels, result="error"))
            nbytes.add(t.nbytes, labels)
            seconds.add(t.seconds, labels)
            errors.add(t.failed, labels)
            if t.seconds > 0:
                rate.add(t.nbytes / t.seconds, labels)
        return [files, nbytes, seconds, errors, rate]


# ---------------------------------------------------------------------------- reading the context
_PHASES = ("getjob", "stagein", "payload", "stageout", "setup")
_MEMORY = {"maxRSS": ("rss", "max"), "maxPSS": ("pss", "max"), "maxVMEM": ("vmem", "max"),
           "maxSWAP": ("swap", "max"), "avgRSS": ("rss", "avg"), "avgPSS": ("pss", "avg"),
           "avgVMEM": ("vmem", "avg"), "avgSWAP": ("swap", "avg")}


def http_families(stats: Any) -> List[Family]:
    """Server request counts, failures and durations from the HTTP client's statistics."""
    requests = Family("pilot_server_requests_total", "counter", "Requests to the PanDA server and other services")
    failures = Family("pilot_server_request_failures_total", "counter", "Requests that failed")
    duration = Family("pilot_server_request_duration_seconds", "summary", "Duration of the requests")
    heartbeat = Family("pilot_heartbeat_latency_seconds", "summary",
                       "Latency of the job updates (heartbeats and final updates) to the server")
    if stats is None:
        return []
    counts = dict(getattr(stats, "per_method", {}) or {})
    secs = dict(getattr(stats, "per_method_seconds", {}) or {})
    fails = dict(getattr(stats, "per_method_failures", {}) or {})
    hb_sum, hb_count = 0.0, 0
    for method in sorted(counts):
        labels = {"method": method}
        requests.add(counts[method], labels)
        failures.add(fails.get(method, 0), labels)
        duration.add(secs.get(method, 0.0), labels, "_sum").add(counts[method], labels, "_count")
        if method in HEARTBEAT_METHODS:
            hb_sum += secs.get(method, 0.0)
            hb_count += counts[method]
    if hb_count:
        heartbeat.add(hb_sum, None, "_sum").add(hb_count, None, "_count")
    return [requests, failures, duration, heartbeat]


def exception_families(runners: Iterable[Any]) -> List[Family]:
    """The exceptions counted per activity label by the runners (the background runner, the supervisor)."""
    counts: Dict[str, int] = {}
    for runner in runners:
        for label, count in (getattr(runner, "exception_counts", dict)() or {}).items():
            counts[label] = counts.get(label, 0) + int(count)
    family = Family("pilot_background_exceptions_total", "counter",
                    "Exceptions raised by each background activity and component of the pilot")
    for label in sorted(counts):
        family.add(counts[label], {"activity": label})
    return [family]


def job_families(jobs: Iterable[Any], pilot_start: float,
                 timing: Optional[Callable[[Any, float], str]] = None) -> List[Family]:
    """Phase timings (``timing(job, pilot_start)`` gives pilotTiming), payload memory and CPU of the jobs."""
    phases = Family("pilot_job_phase_seconds", "gauge", "Seconds a job spent in each pilot phase (pilotTiming)")
    memory = Family("pilot_payload_memory_kilobytes", "gauge", "Memory of the payload tree (memory monitor)")
    cpu = Family("pilot_payload_cpu_seconds", "gauge", "CPU seconds used by the payload tree")
    for job in jobs:
        pandaid = str(getattr(job, "jobid", ""))
        try:
            values = timing(job, pilot_start).split("|") if timing is not None else []
        except Exception:  # a job object without timing
            values = []
        for phase, value in zip(_PHASES, values):
            phases.add(float(value), {"pandaid": pandaid, "phase": phase})
        for key, (kind, stat) in _MEMORY.items():
            amount = (getattr(job, "memory_summary", {}) or {}).get(key)
            if isinstance(amount, (int, float)):
                memory.add(amount, {"pandaid": pandaid, "kind": kind, "stat": stat})
        if getattr(job, "cpuconsumptiontime", None) is not None:
            cpu.add(job.cpuconsumptiontime, {"pandaid": pandaid})
    return [phases, memory, cpu]


# ---------------------------------------------------------------------------- the writer
def metrics_path(directory: str, pid: Optional[int] = None) -> str:
    return os.path.join(directory, f"pilot_{pid or os.getpid()}.prom")


def remove_stale(directory: str, keep: float, now: Optional[float] = None) -> list:
    """Remove ``pilot_<pid>.prom`` files of pilots that are gone and older than ``keep`` seconds."""
    now = time.time() if now is None else now
    removed: list = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = re.match(r"^pilot_(\d+)\.prom$", name)
        if not match or int(match.group(1)) == os.getpid():
            continue
        path = os.path.join(directory, name)
        try:
            if os.path.exists(f"/proc/{match.group(1)}") or now - os.path.getmtime(path) < keep:
                continue
            os.unlink(path)
            removed.append(path)
        except OSError:
            continue
    return removed


class MetricsWriter:
    """Rewrite the metrics file every ``interval`` seconds from ``collect()`` (a list of families)."""

    def __init__(self, path: str, collect: Callable[[], List[Family]], interval: float = 30.0,
                 labels: Optional[Dict[str, str]] = None) -> None:
        self.path = path
        self.collect = collect
        self.interval = max(0.5, float(interval))
        self.labels = dict(labels or {"pilot_pid": str(os.getpid())})
        self.running = True
        self._stop = threading.Event()
        self._activity: Optional[Activity] = None
        self.writes = 0

    def write(self) -> str:
        """Write the file now (atomically); returns its text."""
        families = list(self.collect())
        families.append(Family("pilot_running", "gauge", "1 while the pilot runs, 0 in its last metrics file")
                        .add(1 if self.running else 0))
        families.append(Family("pilot_metrics_timestamp_seconds", "gauge", "When this file was written")
                        .add(round(time.time(), 3)))
        text = render(families, self.labels)
        write_file_atomic(self.path, text)
        self.writes += 1
        return text

    def _safe_write(self) -> None:
        try:
            self.write()
        except Exception as exc:  # metrics must never disturb the pilot
            logger.warning("cannot write the metrics file %s: %s", self.path, exc)

    def start(self) -> "MetricsWriter":
        """Write the file now, then every ``interval`` s (a failed write is logged and counted; the next one runs)."""
        self._safe_write()
        self._activity = start_activity(WRITER_ACTIVITY, self.write, interval=self.interval, delay=self.interval,
                                        stop=self._stop)
        return self

    def close(self) -> None:
        """Stop the periodic writes and write the last file (``pilot_running 0``)."""
        self._stop.set()
        if self._activity is not None:
            self._activity.join(timeout=5)
        self.running = False
        self._safe_write()


class _Null:
    """Stands in for the writer when metrics are off."""

    def observe_transfer(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


class PilotMetricsRun(PilotMetrics):
    """The metrics of one pilot run: the transfer store plus the writer that reads the context."""

    def __init__(self, ctx: PilotContext, path: str, interval: float,
                 timing: Optional[Callable[[Any, float], str]] = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.timing = timing
        self.slot_end: Optional[float] = None
        self.seen: Dict[str, Any] = {}  # jobid -> job, for the jobs that have left the pilot
        self.info = _pilot_info(ctx)
        self.writer = MetricsWriter(path, self.collect_all, interval)

    def collect_all(self) -> List[Family]:
        ctx = self.ctx
        with ctx.lock:
            current = list(ctx.current_jobs.values())
        for job in current + ([ctx.last_job] if ctx.last_job is not None else []):
            self.seen[str(job.jobid)] = job
        while len(self.seen) > 50:
            self.seen.pop(next(iter(self.seen)))
        info = [Family("pilot_info", "gauge", "The pilot and where it runs").add(1, self.info),
                Family("pilot_start_time_seconds", "gauge", "When the pilot started").add(round(ctx.start_time, 3)),
                Family("pilot_jobs_running", "gauge", "Jobs in the pilot").add(len(current)),
                Family("pilot_jobs_completed_total", "counter", "Jobs the pilot completed").add(ctx.jobs_processed)]
        families = info + self.families() + http_families(getattr(getattr(ctx, "http", None), "stats", None))
        families += job_families(self.seen.values(), ctx.start_time, self.timing)
        families += exception_families(r for r in (getattr(ctx, "runner", None), getattr(ctx, "supervisor", None))
                                       if r is not None)
        if self.slot_end:
            families.append(Family("pilot_batch_slot_end_time_seconds", "gauge", "When the batch slot ends")
                            .add(round(self.slot_end)))
        return families

    def close(self) -> None:
        self.writer.close()


def _pilot_info(ctx: PilotContext) -> dict:
    args = getattr(ctx, "args", None)
    node = getattr(ctx, "node", None)
    from pilot.util.constants import PILOT_VERSION

    return {"queue": getattr(args, "queue", ""), "version": PILOT_VERSION,
            "workflow": getattr(args, "workflow", "") or "generic",
            "batch_system": getattr(node, "batch_system", ""), "batch_job_id": getattr(node, "batch_job_id", ""),
            "host": getattr(node, "hostname", "") or socket.gethostname()}


def start_metrics(ctx: PilotContext, timing: Optional[Callable[[Any, float], str]] = None) -> Any:
    """Start the metrics file of a pilot run (``[Pilot] metrics_dir``/``metrics_interval``); close() at the end.

    ``timing(job, pilot_start)`` gives a job's pilotTiming text (``pilot.control.reporting.pilot_timing``).
    """
    from pilot.util.config import config

    directory = str(config.Pilot.get("metrics_dir", "") or "").strip()
    if directory.lower() in ("off", "none", "false", "no"):
        return _Null()
    if directory:
        try:
            os.makedirs(directory, exist_ok=True)
            remove_stale(directory, float(config.Pilot.get("metrics_keep", 3600) or 3600))
        except OSError as exc:
            logger.warning("metrics directory %s is not usable (%s): metrics go to the work dir", directory, exc)
            directory = ""
    directory = directory or ctx.mainworkdir
    run = PilotMetricsRun(ctx, metrics_path(directory), float(config.Pilot.get("metrics_interval", 30) or 30),
                          timing=timing)
    if getattr(getattr(ctx, "node", None), "batch_system", ""):
        from pilot.util.batch import batch_info

        run.slot_end = batch_info().end_time
    run.writer.start()
    logger.info("pilot metrics in %s every %g s", run.writer.path, run.writer.interval)
    return run
