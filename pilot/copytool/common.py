"""Helpers shared by the copytools: time-outs, failure classification, URLs and paths.

Copytools only move bytes. Checksums against the job's values, size checks, retries, replica order and
trace reports are done once by the Data API (:mod:`pilot.api.data`).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union
from urllib.parse import urlparse

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool.options import CopytoolOptions
from pilot.util.commandrunner import run_command
from pilot.util.filehandling import checksums_equal, md5_hexdigest, safe_join

if TYPE_CHECKING:
    from pilot.info.filespec import FileSpec

logger = logging.getLogger(__name__)

MB = 1024 * 1024
TIMEOUT_BASE = 300  # seconds
TIMEOUT_MAX = 3 * 3600
KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL for a cancelled or timed-out tool

# error classes: decide whether and how the Data API retries
MISSING = "missing"  # the source does not exist: no retry (another replica may be tried)
CHECKSUM = "checksum"  # corrupted data: try another replica, never the same one again
TIMEOUT = "timeout"
SERVICE = "service"  # storage service down or refusing: retry with back-off
NETWORK = "network"
CONFIG = "config"  # proxy, credentials, unsupported feature: no retry
EXISTS = "exists"
SPACE = "space"
OTHER = "other"

#: classes for which the same transfer is retried (with jittered exponential back-off)
RETRYABLE = frozenset({TIMEOUT, SERVICE, NETWORK, OTHER})


@dataclass(frozen=True)
class _Rule:
    patterns: tuple  # lower-case substrings, any one matches
    stagein_code: int
    stageout_code: int
    state: str
    kind: str


# first matching rule wins; the order puts the more specific messages first
_RULES = (
    _Rule(("timed out", "timeout", "operation expired", "[3019]"),
          ErrorCodes.STAGEINTIMEOUT, ErrorCodes.STAGEOUTTIMEOUT, "CP_TIMEOUT", TIMEOUT),
    _Rule(("does not match the checksum", "checksum mismatch", "checksum verification failed",
           "checksums do not match", "adler32 mismatch", "md5 mismatch", "checksum error",
           "checksum do not match", "checksum validation failed"),
          0, 0, "", CHECKSUM),  # code/state resolved by checksum type below
    _Rule(("globus_xio:", "globus_ftp"),
          ErrorCodes.GETGLOBUSSYSERR, ErrorCodes.PUTGLOBUSSYSERR, "GLOBUS_FAIL", SERVICE),
    _Rule(("file exists", "srm_file_busy", "file already exists", "already exists"),
          ErrorCodes.FILEEXISTS, ErrorCodes.FILEEXISTS, "FILE_EXISTS", EXISTS),
    _Rule(("query chksum is not supported", "unable to checksum", "checksum calculation for adler32 not supported",
           "checksum calculation for md5 not supported", "function not implemented"),
          ErrorCodes.CHKSUMNOTSUP, ErrorCodes.CHKSUMNOTSUP, "CHKSUM_NOTSUP", CONFIG),
    _Rule(("could not establish context", "proxy has expired", "no valid proxy", "certificate has expired"),
          ErrorCodes.NOPROXY, ErrorCodes.NOPROXY, "CONTEXT_FAIL", CONFIG),
    _Rule(("no space left on device", "disk quota exceeded", "not enough space"),
          ErrorCodes.NOLOCALSPACE, ErrorCodes.NOREMOTESPACE, "NO_SPACE", SPACE),
    _Rule(("invalidaccesskeyid", "signaturedoesnotmatch", "nocredentialserror", "unable to locate credentials",
           "s3 credentials"),
          ErrorCodes.MISSINGCREDENTIALS, ErrorCodes.MISSINGCREDENTIALS, "S3_ERROR", CONFIG),
    _Rule(("no such file or directory", "[3011]", "file not found", "404 not found", "does not exist",
           "sourcenotfound", "no such file", "file unavailable", "dataidentifiernotfound", "file_not_found"),
          ErrorCodes.MISSINGINPUTFILE, ErrorCodes.NOSUCHFILE, "", MISSING),  # state depends on direction
    _Rule(("network is unreachable", "no route to host", "name or service not known",
           "temporary failure in name resolution"),
          ErrorCodes.UNREACHABLENETWORK, ErrorCodes.UNREACHABLENETWORK, "NETWORK_UNREACHABLE", NETWORK),
    _Rule(("service is not available", "service_unavailable", "service unavailable", "connection refused",
           "connection reset", "unable to connect", "couldn't connect", "could not connect", "socket error",
           "broken pipe", "[3012]", "server disconnected", "http 503", "http 502", "connection closed",
           "connection aborted", "remote end closed", "connection error", "host is down", "connection timed out"),
          ErrorCodes.SERVICENOTAVAILABLE, ErrorCodes.SERVICENOTAVAILABLE, "SERVICE_ERROR", SERVICE),
    _Rule(("server responded with an error", "[error] server", "xrootd error", "[fatal]"),
          ErrorCodes.XRDCPERROR, ErrorCodes.XRDCPERROR, "XRDCP_ERROR", OTHER),
)


@dataclass
class TransferError:
    """A classified transfer failure."""

    code: int
    state: str
    error: str
    kind: str

    @property
    def retryable(self) -> bool:
        """Whether the same source/destination deserves another attempt."""
        return self.kind in RETRYABLE


def classify_error(output: str, is_stagein: bool = True) -> TransferError:
    """Classify tool output into a pilot error code, a trace state and an error class."""
    text = output or ""
    low = text.lower()
    for rule in _RULES:
        if not any(p in low for p in rule.patterns):
            continue
        if rule.kind == CHECKSUM:
            md5 = "md5" in low and "adler32" not in low
            if is_stagein:
                code = ErrorCodes.GETMD5MISMATCH if md5 else ErrorCodes.GETADMISMATCH
            else:
                code = ErrorCodes.PUTMD5MISMATCH if md5 else ErrorCodes.PUTADMISMATCH
            return TransferError(code, "MD5_MISMATCH" if md5 else "AD_MISMATCH", _details(text), CHECKSUM)
        if rule.kind == MISSING:
            state = "MISSING_INPUT" if is_stagein else "NO_FILE"
            return TransferError(rule.stagein_code if is_stagein else rule.stageout_code, state, _details(text),
                                 MISSING)
        return TransferError(rule.stagein_code if is_stagein else rule.stageout_code, rule.state, _details(text),
                             rule.kind)
    code = ErrorCodes.STAGEINFAILED if is_stagein else ErrorCodes.STAGEOUTFAILED
    return TransferError(code, "COPY_ERROR", _details(text), OTHER)


def resolve_common_transfer_errors(output: str, is_stagein: bool = True) -> tuple:
    """``(code, state)`` for tool output (compat §8 mapping)."""
    err = classify_error(output, is_stagein)
    return err.code, err.state


def transfer_error(output: str, is_stagein: bool, prefix: str = "") -> PilotException:
    """A PilotException carrying the classified code, trace ``state`` and error ``kind``."""
    err = classify_error(output, is_stagein)
    msg = f"{prefix}{err.error}" if prefix else err.error
    return PilotException(msg[:1024], code=err.code, state=err.state, kind=err.kind)


def _details(text: str) -> str:
    match = re.search(r"Details\s*:\s*(.*)", text)
    detail = match.group(1) if match else text
    return " ".join(detail.split())[:1000]


def run_tool(cmd: list, timeout: float, setup: str = "", env: Optional[dict] = None, cwd: Optional[str] = None,
             is_stagein: bool = True, stop_event: Optional[threading.Event] = None, quiet: bool = False,
             check: bool = True) -> str:
    """Run a transfer command (after the queue's ``setup`` line, if any); return its output.

    A time-out, a set ``stop_event`` (the transfer was cancelled) or a non-zero exit raises the classified
    PilotException (code, trace state, error class); in the first two cases the command's whole process
    tree is killed first. ``quiet`` logs a failure at debug level (for commands expected to fail);
    ``check=False`` returns the output of a command that exited non-zero (bulk copies that partly failed).
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    line = f"{setup.strip().rstrip(';')}; {shlex.join(cmd)}" if setup.strip() else shlex.join(cmd)
    from pilot.copytool.middleware import wrap_line

    contained = wrap_line(line)  # the queue's middleware container, when it names one
    logger.info("running: %s (time-out %d s)", contained or line, timeout)
    if contained:
        result, cancelled = run_cancellable(contained, timeout, full_env, cwd, stop_event, shell=True)
    else:
        result, cancelled = run_cancellable(line if setup.strip() else cmd, timeout, full_env, cwd, stop_event,
                                            shell=bool(setup.strip()))
    output = f"{result.stdout}\n{result.stderr}".strip()
    if cancelled:
        raise cancelled_error(f"{cmd[0]} was stopped", is_stagein)
    if result.timed_out:
        raise transfer_error(f"copy command timed out after {timeout} s: {output[-500:]}", is_stagein)
    if result.exit_code != 0:
        (logger.debug if quiet else logger.warning)("%s failed (exit %s): %s", cmd[0], result.exit_code,
                                                    output[-2000:])
        if check:
            raise transfer_error(output or f"{cmd[0]} exited with {result.exit_code}", is_stagein)
    return output


def cancelled_error(what: str, is_stagein: bool) -> PilotException:
    """The error of a transfer stopped by its stop event (TransferHandle.cancel, a job abort): never retried."""
    return PilotException(f"transfer cancelled: {what}", state="CANCELLED", kind=CONFIG,
                          code=ErrorCodes.STAGEINFAILED if is_stagein else ErrorCodes.STAGEOUTFAILED)


def run_cancellable(cmd: Any, timeout: float, env: Optional[dict] = None, cwd: Optional[str] = None,
                    stop_event: Optional[threading.Event] = None, shell: bool = False) -> tuple:
    """Run ``cmd`` in its own session until it exits, times out or ``stop_event`` is set.

    Returns ``(CommandResult, cancelled)``. The one command runner (:mod:`pilot.util.commandrunner`) runs
    it: on time-out or cancel its process tree (and its process group) is killed, with ``KILL_GRACE``
    between SIGTERM and SIGKILL; its output is kept to the runner's cap.
    """
    if logger.isEnabledFor(logging.DEBUG):  # -d: the command as run, tokens and secrets hidden
        text = cmd if isinstance(cmd, str) else " ".join(str(word) for word in cmd)
        logger.debug("transfer command (time-out %.0f s, cwd %s): %s", timeout, cwd or ".",
                     re.sub(r"((?:authz|access_token|token|password|secret)[=:])[^&\s'\"]+", r"\1***", text,
                            flags=re.IGNORECASE))
    result = run_command(cmd, timeout=timeout, cwd=cwd, env=env, shell=shell, stop_event=stop_event,
                         grace=KILL_GRACE)
    if not result.timed_out and not result.cancelled:
        logger.debug("transfer command ended with %s; stderr: %s", result.exit_code,
                     (result.stderr or "").strip()[-300:] or "(empty)")
    return result, result.cancelled


def get_timeout(filesize: Any, base: int = TIMEOUT_BASE) -> int:
    """Transfer time-out for one file: 300 s + 1 s per MB, at most 3 hours."""
    try:
        size = max(0, int(filesize or 0))
    except (TypeError, ValueError):
        size = 0
    return int(min(TIMEOUT_MAX, base + size // MB))


# ---------------------------------------------------------------------- URLs and paths
def is_local_url(url: str) -> bool:
    """A file:// URL or a plain absolute path."""
    return bool(url) and (url.startswith("file://") or url.startswith("/"))


def url_to_path(url: str) -> str:
    """The local path of a file:// URL (or of a plain path)."""
    if url.startswith("file:///") and not any(c in url for c in "?#;\t\r\n"):
        return url[7:]  # what urlparse gives for the usual form, at a fraction of its cost
    if url.startswith("file://"):
        parsed = urlparse(url)
        return parsed.path if parsed.netloc in ("", "localhost") else f"/{parsed.netloc}{parsed.path}"
    return url


def join_url(endpoint: str, *parts: str) -> str:
    """``endpoint`` + storage path + relative parts (``file://`` + ``/data`` -> ``file:///data``).

    The storage path is appended as given (so ``root://h:1094`` + ``//data/`` keeps its double slash);
    later parts are joined with exactly one slash.
    """
    url = endpoint or ""
    for index, part in enumerate(p for p in parts if p):
        if url.endswith("://"):
            url += part if part.startswith("/") else "/" + part
        elif not url:
            url = part
        elif index == 0 and part.startswith("/"):
            url = url.rstrip("/") + part  # keeps a storage prefix like '//rucio/xrd/' (root://host//abs/path)
        else:
            url = url.rstrip("/") + "/" + part.lstrip("/")
    return url


def deterministic_path(scope: str, lfn: str) -> str:
    """Rucio's ``hash`` convention: ``<scope dots->slashes>/<md5[0:2]>/<md5[2:4]>/<lfn>``."""
    digest = md5_hexdigest(f"{scope}:{lfn}".encode())
    return f"{scope.replace('.', '/')}/{digest[0:2]}/{digest[2:4]}/{lfn}"


def local_file_path(fspec: FileSpec, workdir: str = "") -> str:
    """The file's path in the job work dir (``fspec.workdir``, else ``workdir``); refuses unsafe LFNs."""
    base = fspec.workdir or workdir or os.getcwd()
    lfn = fspec.lfn
    # a plain name under an absolute dir cannot leave it: the result safe_join would give, without its
    # checks (the Data API and the tools ask for each file's path several times)
    if lfn and len(lfn) <= 255 and "/" not in lfn and "\x00" not in lfn and lfn not in (".", "..") \
            and isinstance(base, str) and base[:1] == "/" and base[1:2] != "/":
        return os.path.join(os.path.normpath(base), lfn)
    return safe_join(base, lfn)


def transfers_in_threads(module: ModuleType, kwargs: dict, is_stagein: bool) -> bool:
    """Whether the Data API should give ``module``'s transfers (with these keyword arguments) pool threads.

    A tool whose transfers are mere metadata operations (``mv`` linking inputs) defines
    ``parallel_transfers(kwargs, is_stagein) -> bool`` and returns False: starting threads and passing
    the GIL between them costs more than a link, so the Data API then runs the files one after the
    other in its own thread. Tools without the function get threads.
    """
    hint = getattr(module, "parallel_transfers", None)
    return True if hint is None else bool(hint(kwargs, is_stagein))


def get_copysetup(copytools: Optional[dict], name: str) -> str:
    """The ``setup`` of a tool in the queue's ``copytools`` dict ('' when none)."""
    entry = (copytools or {}).get(name) or {}
    return str(entry.get("setup") or "") if isinstance(entry, dict) else ""


def tool_setting(kwargs: Union[Mapping[str, Any], CopytoolOptions], tool: str, key: str, default: Any = None) -> Any:
    """A tool option: keyword argument ``key``, else the queue's ``copytools[tool][key]``, else the
    queue catchall ``<tool>_<key>=value``, else ``default`` (see :meth:`CopytoolOptions.setting`)."""
    return CopytoolOptions.of(kwargs).setting(tool, key, default)


def merge_destinations(files: list) -> dict:
    """Group legacy stage-in dicts by destination directory: ``{dir: {'lfns': set, 'files': [dicts]}}``.

    Dicts whose destination directory does not exist are marked failed (errno 1) and left out.
    """
    grouped: dict = {}
    for item in files:
        dest = item.get("destination") or ""
        if not dest or not os.path.isdir(dest):
            item.update(status="failed", errno=1, errmsg=f"destination directory does not exist: {dest}")
            continue
        item.update(status="running", errno=2, errmsg="file not yet downloaded")
        entry = grouped.setdefault(dest, {"lfns": set(), "files": []})
        entry["lfns"].add(f"{item.get('scope')}:{item.get('name')}")
        entry["files"].append(item)
    return grouped


merge_destination = merge_destinations  # the name used in the project brief


def settle_existing(fspec: FileSpec, where: str, remote_adler32: str) -> None:
    """A stage-out found ``where`` already taken: the same file is a success, anything else 1221 FILEEXISTS.

    Storage is never overwritten by a job: every copytool uploads without its overwrite mode (or checks
    first) and comes here when the destination exists. With the local adler32 equal to the storage's
    the file counts as transferred (a recovered job's output, a retried upload whose reply was lost);
    a different or unknown checksum leaves the replica untouched and fails the file with 1221.
    """
    local = (fspec.checksum or {}).get("adler32") or ""
    if remote_adler32 and local and checksums_equal(remote_adler32, local):
        logger.info("%s is already at %s with the same adler32 %s: not copied again", fspec.lfn, where, local)
        fspec.remote_checksum = {"adler32": remote_adler32.lower().zfill(8)}
        fspec.turl = fspec.turl or fspec.surl or where
        fspec.status, fspec.status_code = "transferred", 0
        return
    raise PilotException(f"{where} already exists with adler32 {remote_adler32 or 'unknown'} (local {local}): "
                         "the replica is left untouched", code=ErrorCodes.FILEEXISTS, state="FILE_EXISTS",
                         kind=EXISTS)


def mark_failed(fspec: FileSpec, exc: PilotException) -> None:
    """Record a failure on a FileSpec."""
    fspec.status = "failed"
    fspec.status_code = exc.get_error_code()
    fspec.transfer_error = exc.diag
