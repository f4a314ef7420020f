"""Generic experiment plug-in: turn how the payload ended into a pilot error code.

Order of the checks (the first that matches decides): a core file in the work dir (1355), death by
SIGSEGV (1328), a container runtime failure in stderr (1306-1309, 1325, 1340, 1345, 1348, 1372),
then the exit code through ``ErrorCodes.resolve_transform_error`` (1305 for any other failure).
"""

from __future__ import annotations

import logging
import os
import signal
from typing import TYPE_CHECKING, List, Tuple

from pilot.api.container import classify_container_error
from pilot.common.errorcodes import ErrorCodes
from pilot.util.config import config
from pilot.util.filehandling import tail

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

#: characters of payload output read for diagnostics and log extracts
TAIL_BYTES = 8192


def core_files(workdir: str) -> List[str]:
    """Names of core dumps left in the work dir (``core`` or ``core.<pid>``)."""
    try:
        return sorted(n for n in os.listdir(workdir) if n == "core" or (n.startswith("core.") and n[5:].isdigit()))
    except OSError:
        return []


def payload_output(job: JobData, which: str = "stderr", nbytes: int = TAIL_BYTES) -> str:
    """The tail of the payload's stdout or stderr file."""
    name = config.Payload.payloadstderr if which == "stderr" else config.Payload.payloadstdout
    return tail(os.path.join(job.workdir, str(name)), nbytes)


def payload_signal(job: JobData) -> int:
    """The signal that ended the payload (0 when it exited normally)."""
    sig = job.extra_metrics.get("payloadSignal") if isinstance(job.extra_metrics, dict) else None
    if sig:
        return int(sig)
    code = job.exitcode or 0
    return code - 128 if 128 < code < 160 else 0


def common_failure(job: JobData, stderr: str) -> Tuple[int, str]:
    """Core dump, SIGSEGV or a container failure: (code, diag), (0, '') when none applies."""
    cores = core_files(job.workdir)
    if cores:
        return ErrorCodes.COREDUMP, f"the payload left a core dump ({', '.join(cores[:3])})"
    if payload_signal(job) == signal.SIGSEGV:
        return ErrorCodes.PAYLOADSIGSEGV, "the payload was ended by a segmentation violation (SIGSEGV)"
    code, line = classify_container_error(job.exitcode or 0, stderr)
    if code:
        return code, f"container failure: {line[:200]}"
    return 0, ""


def interpret(job: JobData) -> int:
    """The pilot error code for the payload's exit (0 when it succeeded); the error is recorded on the job."""
    exit_code = job.exitcode or 0
    stderr = payload_output(job, "stderr")
    code, diag = common_failure(job, stderr)
    if not code and exit_code:
        code = ErrorCodes.resolve_transform_error(exit_code, stderr)
        diag = _diag_from_stderr(exit_code, payload_signal(job), stderr)
    if code:
        job.fail(code, diag)
    return code


def _diag_from_stderr(code: int, sig: int, stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    what = f"signal {sig}" if sig else f"exit code {code}"
    return f"payload failed with {what}" + (f": {last[:200]}" if last else "")


def get_log_extracts(job: JobData, state: str) -> str:
    """The tail of the payload's stderr (failed jobs, or jobs with an error already) for the pilotLog field."""
    if state != "failed" and not (state != "finished" and job.errors):
        return ""
    return payload_output(job, "stderr", 1024)
