"""ATLAS plug-in: turn the payload's output and job report into a pilot error code.

The job report is read first (exeErrorCode/Diag, events, database use, output GUIDs). A payload
that failed (non-zero exit, or a report exit code) is then matched, first match wins, against:

=======================================================  ==========================
core file in the work dir                                1355 COREDUMP
SIGSEGV (signal, exit 139, or "got a SIGSEGV signal")    1328 PAYLOADSIGSEGV
container runtime messages                               1306-1309, 1325, 1340, 1345, 1348, 1372
"bad_alloc" in the report's errors or the output         1223 BADALLOC
"FATAL out of memory: taking the application down"       1212 PAYLOADOUTOFMEMORY
"No release candidates found"                            1244 NORELEASEFOUND
``sh: ...setup.sh: No such file or directory``           1211 MISSINGINSTALLATION
"AtlasSetup(FATAL): Fatal exception"                     1334 SETUPFATAL
"No space left on device"                                1098 NOLOCALSPACE
"prepare 5 database is locked" / "Error SQLiteStatement"  1115 NFSSQLITE
"ERROR: unable to fetch source tarball from web"         1335 MISSINGUSERCODE
exit code 146                                            1246 NOUSERTARBALL
anything else                                            ``ErrorCodes.resolve_transform_error`` (1305...)
=======================================================  ==========================

Exit codes 160-162 of an HPO pre/post-process are harmless and cleared.
"""

from __future__ import annotations

import logging
import os
import re
import signal
from typing import TYPE_CHECKING, List, Optional, Tuple

from pilot.common.errorcodes import ErrorCodes
from pilot.user.generic.common import HPO_LOOP_END_CODES
from pilot.user.generic.diagnose import common_failure, payload_output, payload_signal
from pilot.util.filehandling import directory_size, tail

from .jobreport import apply_job_report, read_job_report
from .setup import NO_RELEASE_MESSAGE

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

#: (code, patterns searched in stdout+stderr, description)
OUTPUT_PATTERNS: List[Tuple[int, Tuple[str, ...], str]] = [
    (ErrorCodes.BADALLOC, ("std::bad_alloc", "St9bad_alloc"), "the payload ran out of memory (bad_alloc)"),
    (ErrorCodes.PAYLOADOUTOFMEMORY, ("FATAL out of memory: taking the application down",),
     "the payload ran out of memory"),
    (ErrorCodes.NORELEASEFOUND, (NO_RELEASE_MESSAGE,), "the software release is not installed"),
    (ErrorCodes.SETUPFATAL, ("AtlasSetup(FATAL): Fatal exception",), "AtlasSetup failed"),
    (ErrorCodes.NOLOCALSPACE, ("No space left on device",), "the payload ran out of disk space"),
    (ErrorCodes.NFSSQLITE, ("prepare 5 database is locked", "Error SQLiteStatement"), "NFS/SQLite locking problem"),
    (ErrorCodes.MISSINGUSERCODE, ("ERROR: unable to fetch source tarball from web",), "the user code is missing"),
]
_INSTALLATION = re.compile(r"^(?:/bin/)?(?:ba)?sh:.*setup\.sh.*No such file or directory", re.M)


def interpret(job: JobData) -> int:
    """Read the job report and classify a failure; the error is recorded on the job. Returns its code."""
    report = read_job_report(job.workdir)
    data = apply_job_report(job, report) if report else {}
    job.extra_metrics["workDirSize"] = directory_size(job.workdir) // 1024
    exit_code = job.exitcode or 0
    if not exit_code and data.get("exitCode"):
        exit_code = int(data.get("exitCode") or 0)
    if exit_code in HPO_LOOP_END_CODES:
        logger.info("job %s: harmless pre/post-process exit code %d", job.jobid, exit_code)
        job.exitcode = job.transexitcode = 0
        return 0
    if not exit_code:
        return 0
    code, diag = classify_failure(job, exit_code, data)
    job.fail(code, diag)
    return code


def classify_failure(job: JobData, exit_code: int, report_data: Optional[dict] = None) -> Tuple[int, str]:
    """(code, diag) for a failed payload (see the module doc)."""
    stderr = payload_output(job, "stderr")
    stdout = payload_output(job, "stdout")
    code, diag = common_failure(job, stderr)
    if code:
        return code, diag
    message = str((report_data or {}).get("exitMsg", ""))
    if "got a SIGSEGV signal" in message or payload_signal(job) == signal.SIGSEGV:
        return ErrorCodes.PAYLOADSIGSEGV, f"segmentation violation in the payload: {message or 'SIGSEGV'}"[:250]
    for error in (report_data or {}).get("errors", []):
        if "bad_alloc" in error:
            return ErrorCodes.BADALLOC, f"bad_alloc in the job report: {error}"[:250]
    output = f"{stdout}\n{stderr}"
    for code, patterns, text in OUTPUT_PATTERNS:
        line = _matching_line(output, patterns)
        if line:
            return code, f"{text}: {line}"[:250]
    if _INSTALLATION.search(stdout[:1024] + "\n" + stderr):
        return ErrorCodes.MISSINGINSTALLATION, "the software installation is missing (setup.sh not found)"
    if exit_code == 146:
        return ErrorCodes.NOUSERTARBALL, "the user tarball could not be downloaded from the PanDA server"
    code = ErrorCodes.resolve_transform_error(exit_code, stderr) or ErrorCodes.PAYLOADEXECUTIONFAILURE
    last = [line.strip() for line in stderr.splitlines() if line.strip()]
    return code, f"payload failed with exit code {exit_code}" + (f": {last[-1][:200]}" if last else "")


def _matching_line(text: str, patterns: Tuple[str, ...]) -> str:
    for line in text.splitlines():
        if any(pattern in line for pattern in patterns):
            return line.strip()[:200]
    return ""


def get_log_extracts(job: JobData, state: str) -> str:
    """Outbound connections seen by the PanDA tracer, and for failed jobs the payload's error lines.

    A job that already has an error counts as failed whatever ``state`` says (the payload component
    asks while the job is still in its payload phase).
    """
    extracts = ""
    tracer = os.path.join(job.workdir, "pandatracerlog.txt")
    if os.path.isfile(tracer) and os.path.getsize(tracer) > 0:
        extracts += f"PandaID={job.jobid} had outbound connections: {tail(tracer, 512)}\n"
    if state in ("failed", "holding") or (state != "finished" and job.errors):
        stderr = payload_output(job, "stderr", 4096)
        lines = [line for line in stderr.splitlines() if line.strip()]
        errors = [line for line in lines if re.search(r"error|fatal|exception|bad_alloc", line, re.I)]
        chosen = (errors or lines)[-10:]
        if chosen:
            extracts += "- payload stderr -\n" + "\n".join(chosen) + "\n"
    return extracts
