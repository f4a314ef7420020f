"""Pilot exceptions. Each carries a pilot error code that ends up in the job's error list.

Usage: ``raise StageInFailure("replica not found for x")`` (class default code) or
``raise PilotException("diag", code=ErrorCodes.NOREPLICAS)``. Extra keyword arguments (e.g. the
copytools' ``state=`` for trace reports) are kept in ``.kwargs``.
"""

from __future__ import annotations

import traceback
from typing import Any, Optional, Tuple

from pilot.common.errorcodes import ErrorCodes

__all__ = [
    "PilotException", "NotImplementedFailure", "UnknownException", "NoLocalSpace", "SizeTooLarge",
    "StageInFailure", "StageOutFailure", "SetupFailure", "RunPayloadFailure", "MessageFailure",
    "CommunicationFailure", "FileHandlingFailure", "NoSuchFile", "ConversionFailure", "MKDirFailure",
    "NoGridProxy", "NoVomsProxy", "TrfDownloadFailure", "NotDefined", "NotSameLength", "ESRecoverable",
    "ESFatal", "ExecutedCloneJob", "ESNoEvents", "ExceededMaxWaitTime", "BadXML", "NoSoftwareDir",
    "LogFileCreationFailure", "QueuedataFailure", "QueuedataNotOK", "ReplicasNotFound",
    "MiddlewareImportFailure", "JobAlreadyRunning", "UnknownCopytool", "PluginError", "ConfigurationError",
    "TimeoutException",
]  # NotImplemented (the Pilot 2 name) is importable by name but kept out of '*' imports


class PilotException(Exception):
    """Base class of all pilot exceptions: a diagnostics message plus a pilot error code.

    ``PilotException(message="", code=None, **kwargs)``; for convenience the order
    ``PilotException(code, message)`` is also understood. Without a code the class default is used.
    """

    default_code: int = ErrorCodes.UNKNOWNEXCEPTION

    def __init__(self, message: Any = "", code: Optional[int] = None, *args: Any, **kwargs: Any) -> None:
        if isinstance(message, int) and not isinstance(message, bool) and not isinstance(code, int):
            message, code = (code if code is not None else ""), message
        self.code: int = int(code) if code is not None else self.default_code
        self.diag: str = str(message) if message not in (None, "") else ErrorCodes.get_error_message(self.code)
        self.kwargs = kwargs
        self.state = kwargs.get("state")
        self._stack_trace = traceback.format_exc()
        super().__init__(self.diag, *args)

    # names used by Pilot 2 / Pilot 3 code
    @property
    def _errorCode(self) -> int:  # noqa: N802
        return self.code

    @property
    def _error_code(self) -> int:
        return self.code

    @property
    def _message(self) -> str:
        return ErrorCodes.get_error_message(self.code)

    def get_error_code(self) -> int:
        """Return the pilot error code."""
        return self.code

    def get_last_error(self) -> str:
        """Return the diagnostics message (Pilot 3 name)."""
        return self.diag

    def get_detail(self) -> str:
        """Return the text of the exception followed by the stack trace active when it was created."""
        trace = self._stack_trace if self._stack_trace.strip() != "NoneType: None" else ""
        return f"{self}\nStacktrace: {trace}" if trace else str(self)

    def __str__(self) -> str:
        return f"Error code: {self.code}, message: {self.diag}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.diag!r}, code={self.code})"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.diag, self.code), {"kwargs": self.kwargs, "state": self.state})


class NotImplementedFailure(PilotException):
    """A function or plug-in is not implemented."""
    default_code = ErrorCodes.NOTIMPLEMENTED


NotImplemented = NotImplementedFailure  # noqa: A001  Pilot 2 class name (shadows the builtin only here)


class UnknownException(PilotException):
    """An unexpected failure."""
    default_code = ErrorCodes.UNKNOWNEXCEPTION


class NoLocalSpace(PilotException):
    """Too little local disk space."""
    default_code = ErrorCodes.NOLOCALSPACE


class SizeTooLarge(PilotException):
    """Input files are too large in total."""
    default_code = ErrorCodes.SIZETOOLARGE


class StageInFailure(PilotException):
    """Stage-in failed."""
    default_code = ErrorCodes.STAGEINFAILED


class StageOutFailure(PilotException):
    """Stage-out failed."""
    default_code = ErrorCodes.STAGEOUTFAILED


class SetupFailure(PilotException):
    """Environment or payload setup failed."""
    default_code = ErrorCodes.SETUPFAILURE


class RunPayloadFailure(PilotException):
    """The payload could not be run."""
    default_code = ErrorCodes.PAYLOADEXECUTIONFAILURE


class MessageFailure(PilotException):
    """A message from the payload could not be handled."""
    default_code = ErrorCodes.MESSAGEHANDLINGFAILURE


class CommunicationFailure(PilotException):
    """Talking to a server (PanDA, Harvester, aCT...) failed."""
    default_code = ErrorCodes.COMMUNICATIONFAILURE


class FileHandlingFailure(PilotException):
    """Reading, writing or moving a file failed."""
    default_code = ErrorCodes.FILEHANDLINGFAILURE


class NoSuchFile(PilotException):
    """A file or directory does not exist."""
    default_code = ErrorCodes.NOSUCHFILE


class ConversionFailure(PilotException):
    """Data could not be converted."""
    default_code = ErrorCodes.CONVERSIONFAILURE


class MKDirFailure(PilotException):
    """A directory could not be created."""
    default_code = ErrorCodes.MKDIR


class NoGridProxy(PilotException):
    """No valid grid proxy."""
    default_code = ErrorCodes.NOPROXY


class NoVomsProxy(PilotException):
    """No valid VOMS proxy."""
    default_code = ErrorCodes.NOVOMSPROXY


class TrfDownloadFailure(PilotException):
    """The transform could not be downloaded."""
    default_code = ErrorCodes.TRFDOWNLOADFAILURE


class NotDefined(PilotException):
    """A required value is not defined."""
    default_code = ErrorCodes.NOTDEFINED


class NotSameLength(PilotException):
    """Lists that must align differ in length."""
    default_code = ErrorCodes.NOTSAMELENGTH


class ESRecoverable(PilotException):
    """Event service: recoverable failure."""
    default_code = ErrorCodes.ESRECOVERABLE


class ESFatal(PilotException):
    """Event service: fatal failure."""
    default_code = ErrorCodes.ESFATAL


class ExecutedCloneJob(PilotException):
    """A clone of the job already ran."""
    default_code = ErrorCodes.EXECUTEDCLONEJOB


class ESNoEvents(PilotException):
    """Event service: no events."""
    default_code = ErrorCodes.ESNOEVENTS


class ExceededMaxWaitTime(PilotException):
    """Waited longer than allowed (e.g. for threads after an abort)."""
    default_code = ErrorCodes.EXCEEDEDMAXWAITTIME


class BadXML(PilotException):
    """Malformed XML."""
    default_code = ErrorCodes.BADXML


class NoSoftwareDir(PilotException):
    """The software directory is missing."""
    default_code = ErrorCodes.NOSOFTWAREDIR


class LogFileCreationFailure(PilotException):
    """The log tarball could not be created."""
    default_code = ErrorCodes.LOGFILECREATIONFAILURE


class QueuedataFailure(PilotException):
    """Queue data could not be retrieved."""
    default_code = ErrorCodes.QUEUEDATA


class QueuedataNotOK(PilotException):
    """Queue data is invalid."""
    default_code = ErrorCodes.QUEUEDATANOTOK


class ReplicasNotFound(PilotException):
    """No suitable replica was found."""
    default_code = ErrorCodes.NOREPLICAS


class MiddlewareImportFailure(PilotException):
    """Required middleware could not be imported."""
    default_code = ErrorCodes.MIDDLEWAREIMPORTFAILURE


class JobAlreadyRunning(PilotException):
    """The job is already running elsewhere."""
    default_code = ErrorCodes.JOBALREADYRUNNING


class UnknownCopytool(PilotException):
    """A copytool name does not resolve to a usable plug-in module."""
    default_code = ErrorCodes.UNKNOWNCOPYTOOL


class PluginError(PilotException):
    """An experiment plug-in module or one of its required functions is missing."""
    default_code = ErrorCodes.NOTIMPLEMENTED


class ConfigurationError(PilotException):
    """The pilot configuration is unusable (e.g. a value names an unset environment variable)."""
    default_code = ErrorCodes.INTERNALPILOTPROBLEM


class TimeoutException(PilotException):
    """An operation ran out of time. ``TimeoutException(message, timeout=None)``.

    Pilot 2 gave this exception code 1334 (SETUPFATAL); we use COMMANDTIMEDOUT (1367), which says
    what happened.
    """

    default_code = ErrorCodes.COMMANDTIMEDOUT

    def __init__(self, message: Any = "", timeout: Optional[float] = None, *args: Any,
                 code: Optional[int] = None, **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(message or "Timeout reached", code, *args, **kwargs)

    @property
    def message(self) -> str:
        return self.diag

    def __str__(self) -> str:
        suffix = f", timeout={self.timeout} seconds" if self.timeout is not None else ""
        return f"{super().__str__()}{suffix}"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_rebuild_timeout, (type(self), self.diag, self.timeout, self.code))


def _rebuild_timeout(cls: type, message: str, timeout: Optional[float], code: int) -> TimeoutException:
    return cls(message, timeout, code=code)
