"""Batch-system awareness: which batch system started the pilot, its job id, and when the slot ends.

The batch system and job id come from the environment the batch system gives its jobs (names as
Pilot 2 reports them in ``pilotID``; the job id is the ``batchID`` field):

==============  ==========================================  ===========================================
system          detected by                                 job id
==============  ==========================================  ===========================================
SLURM           ``SLURM_JOB_ID``                            ``SLURM_JOB_ID`` (``_<task>`` for arrays)
Condor          ``_CONDOR_JOB_AD`` (or ``clusterid``)       the job ad's ``GlobalJobId``
Torque          ``PBS_JOBID``                               ``PBS_JOBID``
LSF             ``LSB_JOBID``                               ``LSB_JOBID`` (``[index]`` for arrays)
BQS             ``QSUB_REQNAME`` / ``BQSCLUSTER``           the variable's value
Kubernetes      ``K8S_JOB_ID``                              ``K8S_JOB_ID``
Grid Engine     ``JOB_ID`` with ``SGE_ROOT``                ``JOB_ID``
==============  ==========================================  ===========================================

The end of the slot (an epoch time) is asked from the batch system itself:

- Slurm: ``squeue -h -j $SLURM_JOB_ID -o %e`` (local time), else ``scontrol show job`` (``EndTime=``);
- HTCondor: the machine ad (``_CONDOR_MACHINE_AD``: ``GLIDEIN_ToDie``, the glidein's end) and the job
  ad (``_CONDOR_JOB_AD``: start time plus ``MaxWallTimeMins`` / ``MaxRuntime``), the earlier one;
- Torque/PBS: ``qstat -f $PBS_JOBID`` (``Walltime.Remaining``, else ``start_time`` plus
  ``Resource_List.walltime``), else ``PBS_WALLTIME`` counted from the pilot's start;
- LSF: ``bjobs -noheader -o "time_left"``.

Every command runs with a short time-out; an answer that cannot be read gives ``None`` (no limit
known), never an exception. :func:`remaining_seconds` is what the lifetime check uses.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Mapping, Optional

from pilot.util.processes import run_command

logger = logging.getLogger(__name__)

#: seconds a batch-system query may take
QUERY_TIMEOUT = 20.0


@dataclass
class BatchInfo:
    """What the pilot knows about its batch slot."""

    system: str = ""
    job_id: str = ""
    end_time: Optional[float] = None  # epoch seconds when the batch system ends the slot
    source: str = ""  # where end_time came from (e.g. "squeue")

    def remaining(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds left in the slot (None when unknown)."""
        if self.end_time is None:
            return None
        return self.end_time - (time.time() if now is None else now)


# ---------------------------------------------------------------------------- system and job id
def _env(environ: Optional[Mapping[str, str]]) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def read_classad(path: str) -> dict:
    """A ClassAd file (``Name = value`` lines) as {name: value}; quotes removed, numbers converted."""
    ad: dict = {}
    try:
        with open(path, errors="replace") as handle:
            lines = handle.readlines()
    except (OSError, TypeError):
        return ad
    for line in lines:
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            ad[name.strip()] = value[1:-1]
            continue
        try:
            ad[name.strip()] = int(value)
        except ValueError:
            try:
                ad[name.strip()] = float(value)
            except ValueError:
                ad[name.strip()] = value
    return ad


def _slurm_id(env: Mapping[str, str]) -> str:
    array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else env.get("SLURM_JOB_ID", "")


def _condor_id(env: Mapping[str, str]) -> str:
    ad = read_classad(env.get("_CONDOR_JOB_AD", ""))
    if ad.get("GlobalJobId"):
        return str(ad["GlobalJobId"])
    if "ClusterId" in ad:
        return f"{ad['ClusterId']}.{ad.get('ProcId', 0)}"
    return env.get("clusterid", "") or env.get("CONDOR_JOB_ID", "")


def _lsf_id(env: Mapping[str, str]) -> str:
    index = env.get("LSB_JOBINDEX", "")
    return f"{env['LSB_JOBID']}[{index}]" if index and index != "0" else env.get("LSB_JOBID", "")


#: (test, name, job id) in the order they are tried
_SYSTEMS: tuple = (
    (lambda e: e.get("SLURM_JOB_ID"), "SLURM", _slurm_id),
    (lambda e: e.get("_CONDOR_JOB_AD") or e.get("clusterid") or e.get("CONDOR_JOB_ID"), "Condor", _condor_id),
    (lambda e: e.get("PBS_JOBID"), "Torque", lambda e: e["PBS_JOBID"]),
    (lambda e: e.get("LSB_JOBID"), "LSF", _lsf_id),
    (lambda e: e.get("QSUB_REQNAME") or e.get("BQSCLUSTER"), "BQS",
     lambda e: e.get("QSUB_REQNAME") or e.get("BQSCLUSTER", "")),
    (lambda e: e.get("K8S_JOB_ID"), "Kubernetes", lambda e: e["K8S_JOB_ID"]),
    (lambda e: e.get("JOB_ID") and e.get("SGE_ROOT"), "Grid Engine", lambda e: e["JOB_ID"]),
)


def detect(environ: Optional[Mapping[str, str]] = None) -> tuple:
    """(batch system, batch job id) from the environment, or ('', '')."""
    env = _env(environ)
    for test, name, job_id in _SYSTEMS:
        if test(env):
            return name, str(job_id(env) or "")
    return "", ""


# ---------------------------------------------------------------------------- end of the slot
def parse_slurm_time(text: str) -> Optional[float]:
    """A Slurm time stamp (``2026-11-22T03:45:49``, local time) as epoch seconds; None for Unknown/N/A."""
    text = (text or "").strip()
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").timestamp()
    except ValueError:
        return None


def parse_duration(text: str) -> Optional[int]:
    """``[[D-]HH:]MM:SS`` or a number of seconds as seconds; None when not a duration."""
    text = (text or "").strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    days = 0
    if "-" in text:
        head, _, text = text.partition("-")
        if not head.isdigit():
            return None
        days = int(head)
    parts = text.split(":")
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return days * 86400 + seconds


def _query(cmd: list, runner: Callable) -> str:
    if not shutil.which(cmd[0]):
        return ""
    result = runner(cmd, timeout=QUERY_TIMEOUT)
    if result.exit_code != 0:
        logger.debug("%s failed (%s): %s", " ".join(cmd), result.exit_code, result.stderr.strip()[-200:])
        return ""
    return result.stdout


def slurm_end_time(job_id: str, runner: Callable = run_command) -> tuple:
    """(end time, source) of a Slurm job: squeue's %e, else scontrol's EndTime."""
    job = job_id
    for line in _query(["squeue", "-h", "-j", job, "-o", "%e"], runner).splitlines():
        end = parse_slurm_time(line)
        if end is not None:
            return end, "squeue"
    match = re.search(r"\bEndTime=(\S+)", _query(["scontrol", "show", "job", job], runner))
    if match:
        end = parse_slurm_time(match.group(1))
        if end is not None:
            return end, "scontrol"
    return None, ""


def condor_end_time(env: Mapping[str, str]) -> tuple:
    """(end time, source) from the HTCondor machine and job ads, when they are readable."""
    candidates = []
    machine = read_classad(env.get("_CONDOR_MACHINE_AD", ""))
    todie = machine.get("GLIDEIN_ToDie")
    if isinstance(todie, (int, float)) and todie > 0:
        candidates.append((float(todie), "machine ad GLIDEIN_ToDie"))
    job = read_classad(env.get("_CONDOR_JOB_AD", ""))
    start = job.get("JobCurrentStartDate") or job.get("JobStartDate")
    if isinstance(start, (int, float)) and start > 0:
        for name, scale in (("MaxWallTimeMins", 60), ("MaxRuntime", 1), ("MaxWallTime", 1)):
            value = job.get(name)
            if isinstance(value, (int, float)) and value > 0:
                candidates.append((float(start) + float(value) * scale, f"job ad {name}"))
                break
    return min(candidates) if candidates else (None, "")


def pbs_end_time(job_id: str, env: Mapping[str, str], started: Optional[float] = None,
                 runner: Callable = run_command, now: Optional[float] = None) -> tuple:
    """(end time, source) of a Torque/PBS job: qstat -f, else PBS_WALLTIME from the pilot's start."""
    now = time.time() if now is None else now
    text = _query(["qstat", "-f", job_id], runner)
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition(" = ")
        if sep:
            fields[name.strip()] = value.strip()
    remaining = parse_duration(fields.get("Walltime.Remaining", ""))
    if remaining is not None:
        return now + remaining, "qstat Walltime.Remaining"
    walltime = parse_duration(fields.get("Resource_List.walltime", ""))
    start_text = fields.get("start_time", "")
    if walltime is not None and start_text:
        try:
            return time.mktime(time.strptime(start_text, "%a %b %d %H:%M:%S %Y")) + walltime, "qstat walltime"
        except ValueError:
            pass
    walltime = parse_duration(env.get("PBS_WALLTIME", ""))
    if walltime is not None and started is not None:
        return started + walltime, "PBS_WALLTIME"
    return None, ""


def lsf_end_time(job_id: str, runner: Callable = run_command, now: Optional[float] = None) -> tuple:
    """(end time, source) of an LSF job: bjobs' time_left (``H:MM`` with a status letter)."""
    now = time.time() if now is None else now
    out = _query(["bjobs", "-noheader", "-o", "time_left", job_id], runner).strip()
    match = re.match(r"(\d+):(\d{2})", out)
    if match:
        return now + int(match.group(1)) * 3600 + int(match.group(2)) * 60, "bjobs time_left"
    return None, ""


def slot_end_time(system: str, job_id: str, environ: Optional[Mapping[str, str]] = None,
                  started: Optional[float] = None, runner: Callable = run_command) -> tuple:
    """(end time, source) of the current batch slot, (None, '') when unknown."""
    env = _env(environ)
    try:
        if system == "SLURM":
            return slurm_end_time(env.get("SLURM_JOB_ID", job_id), runner)
        if system == "Condor":
            return condor_end_time(env)
        if system == "Torque":
            return pbs_end_time(job_id, env, started=started, runner=runner)
        if system == "LSF":
            return lsf_end_time(env.get("LSB_JOBID", job_id), runner)
    except Exception as exc:  # a batch system answer must never stop the pilot
        logger.warning("cannot read the end of the %s slot: %s", system, exc)
    return None, ""


def batch_info(environ: Optional[Mapping[str, str]] = None, started: Optional[float] = None,
               runner: Callable = run_command) -> BatchInfo:
    """Batch system, job id and slot end of this process."""
    system, job_id = detect(environ)
    info = BatchInfo(system=system, job_id=job_id)
    if system:
        info.end_time, info.source = slot_end_time(system, job_id, environ, started=started, runner=runner)
        if info.end_time is not None:
            logger.info("batch slot %s %s ends at %s (%s)", system, job_id,
                        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.end_time)), info.source)
    return info


def remaining_seconds(environ: Optional[Mapping[str, str]] = None, started: Optional[float] = None,
                      runner: Callable = run_command) -> Optional[float]:
    """Seconds left in the batch slot, None when no batch system or no limit is known."""
    return batch_info(environ, started=started, runner=runner).remaining()
