"""Facts about the worker node and the batch slot: host name, CPU, memory, disk, batch system."""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass
from typing import Optional

from pilot.util.batch import detect


@dataclass
class WorkerNode:
    """Static facts about this node, read once."""

    hostname: str
    cpu_mhz: int
    mem_mb: int
    cpu_model: str
    cache_kb: str
    has_avx2: bool
    batch_system: str = ""
    batch_job_id: str = ""

    @property
    def node_name(self) -> str:
        """The node field of getJob/updateJob: ``slot@host`` under HTCondor."""
        slot = os.environ.get("_CONDOR_SLOT")
        return f"{slot}@{self.hostname}" if slot else self.hostname

    @property
    def cpu_consumption_unit(self) -> str:
        """``s+<model> <cache>[+AVX2]`` as the server expects."""
        unit = f"s+{self.cpu_model} {self.cache_kb}".strip()
        return unit + ("+AVX2" if self.has_avx2 else "")


def read_cpuinfo(path: str = "/proc/cpuinfo") -> dict:
    """The first processor block of /proc/cpuinfo as a dict."""
    info: dict = {}
    try:
        with open(path) as handle:
            for line in handle:
                if not line.strip():
                    if info:
                        break
                    continue
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def read_meminfo_mb(path: str = "/proc/meminfo") -> int:
    """Total memory in MB."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def batch_system() -> tuple:
    """(name, job id) of the batch system from its environment, or ('', '') (see :mod:`pilot.util.batch`)."""
    return detect()


def host_name() -> str:
    """The host name as Pilot 2 sends it in ``node`` (the server's modificationHost): ``os.uname()[1]``.

    Not ``socket.getfqdn()``, which gives ``localhost`` on nodes whose host name resolves to the
    loopback address.
    """
    return os.uname()[1] or socket.gethostname()


def collect() -> WorkerNode:
    """Read the node facts."""
    cpu = read_cpuinfo()
    try:
        mhz = int(float(cpu.get("cpu MHz", "0")))
    except ValueError:
        mhz = 0
    system, job_id = batch_system()
    return WorkerNode(hostname=host_name(), cpu_mhz=mhz, mem_mb=read_meminfo_mb(),
                      cpu_model=cpu.get("model name", "unknown"), cache_kb=cpu.get("cache size", ""),
                      has_avx2="avx2" in cpu.get("flags", "").split(), batch_system=system,
                      batch_job_id=job_id)


def free_disk_mb(path: str) -> int:
    """Free space at ``path`` in MB (0 when it cannot be read)."""
    try:
        return shutil.disk_usage(path).free // (1024 * 1024)
    except OSError:
        return 0


def disk_space_for_getjob(path: str, maxwdir_mb: Optional[int]) -> int:
    """diskSpace of getJob: the smaller of the free local disk and the queue's maxwdir, in MB."""
    free = free_disk_mb(path)
    if maxwdir_mb:
        return min(free, int(maxwdir_mb))
    return free
