"""The payload executor of event-service merge jobs (``eventServiceMerge``).

A merge job's inputs include premerge tarballs (``zip://`` LFNs, ``FileSpec.is_tar``) holding the
range outputs; before the payload starts they are unpacked into the work dir, and the job's
``writeToFile`` field is turned into input-list files:

``writeToFile = "<name>:<lfn>,<lfn>^<name2>:<lfn>"`` writes ``<name>.txt`` with the job option that
names ``@<name>`` in jobPars on its first line and then one LFN per line; in jobPars ``@<name>``
becomes ``@<name>.txt`` and the ``<option>=`` in front of it is dropped (the transform reads the
option from the file), as is ``--autoConfiguration=everything``.
"""

from __future__ import annotations

import logging
import os
import re
import tarfile
from typing import TYPE_CHECKING

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.control.payloads.generic import PayloadExecutor

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)


def untar_inputs(job: JobData) -> list:
    """Unpack the job's tarred inputs into its work dir; the member names unpacked."""
    names = []
    for spec in job.indata:
        if not spec.is_tar:
            continue
        path = os.path.join(job.workdir, spec.lfn)
        try:
            with tarfile.open(path) as tar:
                members = _safe_members(tar, job.workdir)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(job.workdir, members=members, filter="data")
                else:  # pragma: no cover - Python < 3.9.17 without extraction filters
                    tar.extractall(job.workdir, members=members)
        except (OSError, tarfile.TarError) as exc:
            raise PilotException(f"cannot unpack the merge input {spec.lfn}: {exc}",
                                 code=ErrorCodes.FILEHANDLINGFAILURE) from exc
        names += [m.name for m in members]
        logger.info("job %s: unpacked %d file(s) from %s", job.jobid, len(members), spec.lfn)
    return names


def _safe_members(tar: tarfile.TarFile, workdir: str) -> list:
    """Regular files whose names stay inside the work dir."""
    root = os.path.realpath(workdir)
    members = []
    for member in tar.getmembers():
        target = os.path.realpath(os.path.join(root, member.name))
        if not member.isfile() or os.path.commonpath([target, root]) != root:
            logger.warning("skipping tar member %s", member.name)
            continue
        members.append(member)
    return members


def job_option_for(jobparams: str, name: str) -> str:
    """The option that reads ``@<name>`` in jobPars (e.g. ``--inputHitsFile``), '' when there is none."""
    found = re.search(r"(\S+?)=@" + re.escape(name) + r"(?=\s|$)", jobparams)
    return found.group(1) if found else ""


def process_writetofile(job: JobData) -> dict:
    """Write the input-list files of ``writeToFile`` and adapt jobPars; returns name -> list of LFNs."""
    lists: dict = {}
    for entry in filter(None, (job.writetofile or "").split("^")):
        name, sep, files = entry.partition(":")
        if not sep or not name.strip():
            logger.error("job %s: writeToFile entry without ':' ignored: %s", job.jobid, entry[:100])
            continue
        lists[name.strip()] = [f.strip() for f in files.split(",") if f.strip()]
    for name, lfns in lists.items():
        option = job_option_for(job.jobparams, name)
        if not option:
            logger.error("job %s: no job option reads @%s", job.jobid, name)
        with open(os.path.join(job.workdir, f"{name}.txt"), "w") as handle:
            if option:
                handle.write(f"{option}\n")
            handle.writelines(f"{lfn}\n" for lfn in lfns)
        params = re.sub(r"@" + re.escape(name) + r"(?=\s|$)", f"@{name}.txt", job.jobparams)
        if option:
            params = params.replace(f"{option}=@{name}.txt", f"@{name}.txt")
        job.jobparams = params.replace("--autoConfiguration=everything", "").strip()
        logger.info("job %s: wrote %s.txt (%d file(s)); jobPars now: %s", job.jobid, name, len(lfns), job.jobparams)
    return lists


class EventServiceMergeExecutor(PayloadExecutor):
    """Unpack the premerge tarballs and write the input lists, then run the payload as usual."""

    def command(self) -> str:
        untar_inputs(self.job)
        process_writetofile(self.job)
        return super().command()
