"""Disk: every ``disk_space_verification_time`` s, in this order (the first finding ends the job):

1. payload output: ``payload.stdout`` or ``payload.stderr`` larger than ``local_size_limit_stdout``
   (kB) -> 1106 STDOUTTOOBIG;
2. free space on the work dir's file system below ``free_space_limit_running`` -> 1098 NOLOCALSPACE;
3. the work dir larger than the queue's maxwdir (MB) plus ``workdir_size_margin`` percent (without
   a maxwdir: ``maximum_input_file_sizes`` plus the stdout limit) -> 1104 USERDIRTOOLARGE; sizes are
   the space the files take on disk (like ``du``), symlinks not followed;
4. an output file of the job larger than ``maximum_output_file_size`` -> 1124 OUTPUTFILETOOLARGE.

The largest work dir size measured goes into jobMetrics as ``workDirSize`` (bytes).
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Callable, Optional, Tuple

from pilot.common.errorcodes import ErrorCodes
from pilot.info.queuedata import QueueData
from pilot.util.config import config
from pilot.util.filehandling import tree_entries

from .base import JobCheck, Verdict, WatchedJob, setting, size_setting

logger = logging.getLogger(__name__)

MB = 1024 * 1024


def disk_usage(path: str) -> Tuple[int, int]:
    """(bytes on disk, number of files) below ``path``; symlinks are not followed."""
    total, count = 0, 0
    for _entry, st in tree_entries(path):
        blocks = getattr(st, "st_blocks", None)
        total += blocks * 512 if blocks is not None else st.st_size
        count += 1
    return total, count


def max_workdir_size(queuedata: Optional[QueueData]) -> Tuple[int, str]:
    """The work dir limit in bytes and how it was derived."""
    margin = setting("workdir_size_margin", 10.0)
    maxwdir = int(getattr(queuedata, "maxwdir", 0) or 0)
    if maxwdir > 0:
        return int(maxwdir * MB * (1 + margin / 100.0)), f"queue maxwdir {maxwdir} MB + {margin:g}%"
    inputs = size_setting("maximum_input_file_sizes", "14336 MB")
    stdout = setting("local_size_limit_stdout", 2097152, int) * 1024
    return inputs + stdout, "maximum_input_file_sizes + local_size_limit_stdout"


class DiskCheck(JobCheck):
    """Payload output size, free space, work dir size and output file sizes."""

    name = "disk"

    def __init__(self, watched: WatchedJob, free_space: Optional[Callable[[str], int]] = None) -> None:
        super().__init__(watched, setting("disk_space_verification_time", 60.0))
        self.stdout_limit = setting("local_size_limit_stdout", 2097152, int) * 1024
        self.free_limit = size_setting("free_space_limit_running", "1 GB")
        self.max_output = size_setting("maximum_output_file_size", "500 GB")
        self.max_workdir, self.workdir_source = max_workdir_size(watched.queuedata())
        self.free_space = free_space or (lambda path: shutil.disk_usage(path).free)
        self.largest = 0

    def run(self, now: float) -> Optional[Verdict]:
        workdir = self.job.workdir
        return (self.check_payload_output(workdir) or self.check_free_space(workdir)
                or self.check_workdir(workdir) or self.check_outputs(workdir))

    def check_payload_output(self, workdir: str) -> Optional[Verdict]:
        for name in (config.Payload.payloadstdout, config.Payload.payloadstderr):
            try:
                size = os.path.getsize(os.path.join(workdir, str(name)))
            except OSError:
                continue
            if size > self.stdout_limit:
                return Verdict(ErrorCodes.STDOUTTOOBIG, f"payload output {name} is too large: {size} B "
                                                        f"(limit {self.stdout_limit} B)")
        return None

    def check_free_space(self, workdir: str) -> Optional[Verdict]:
        try:
            free = self.free_space(workdir)
        except OSError as exc:
            logger.warning("cannot read the free space of %s: %s", workdir, exc)
            return None
        if free < self.free_limit:
            return Verdict(ErrorCodes.NOLOCALSPACE, f"too little free space left on the local disk: {free} B "
                                                    f"(need at least {self.free_limit} B)")
        return None

    def check_workdir(self, workdir: str) -> Optional[Verdict]:
        size, _ = disk_usage(workdir)
        if size > self.largest:
            self.largest = size
            self.job.extra_metrics = dict(self.job.extra_metrics, workDirSize=size)
        if size > self.max_workdir:
            return Verdict(ErrorCodes.USERDIRTOOLARGE, f"the work dir is too large: {size} B "
                                                       f"(limit {self.max_workdir} B, {self.workdir_source})")
        return None

    def check_outputs(self, workdir: str) -> Optional[Verdict]:
        for spec in getattr(self.job, "outdata", []):
            try:
                size = os.stat(os.path.join(workdir, spec.lfn)).st_size
            except (OSError, ValueError):
                continue
            if size > self.max_output:
                return Verdict(ErrorCodes.OUTPUTFILETOOLARGE, f"output file {spec.lfn} is too large: {size} B "
                                                              f"(limit {self.max_output} B)")
        return None
