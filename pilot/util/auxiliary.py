"""Translation between pilot error codes and the pilot's process exit status.

We use the Pilot 2 table (compat 6.3): wrappers and Harvester expect e.g. 1201 (SIGTERM) -> 143.
"""

from __future__ import annotations

import logging
import os
from typing import Dict, List, Union

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import TimeoutException

__all__ = ["TimeoutException", "get_error_code_translation_dictionary", "convert_to_pilot_error_code",
           "shell_exit_code"]

logger = logging.getLogger(__name__)

# pilot error code -> [shell exit status, meaning]; the order matters for the reverse lookup
_TRANSLATION = (
    (-1, 64, "Site offline"),
    (ErrorCodes.GENERALERROR, 65, "General pilot error"),
    (ErrorCodes.MKDIR, 66, "Could not create a directory"),
    (ErrorCodes.NOSUCHFILE, 67, "No such file or directory"),
    (ErrorCodes.NOVOMSPROXY, 68, "No valid VOMS proxy"),
    (ErrorCodes.NOPROXY, 68, "No valid grid proxy"),
    (ErrorCodes.NOLOCALSPACE, 69, "Too little local disk space"),
    (ErrorCodes.UNKNOWNEXCEPTION, 70, "Unexpected pilot exception"),
    (ErrorCodes.QUEUEDATA, 71, "Could not retrieve the queue data"),
    (ErrorCodes.QUEUEDATANOTOK, 72, "Queue data is invalid"),
    (ErrorCodes.NOSOFTWAREDIR, 73, "Software directory is missing"),
    (ErrorCodes.JSONRETRIEVALTIMEOUT, 74, "Timed out retrieving JSON data"),
    (ErrorCodes.BLACKHOLE, 75, "File system black hole"),
    (ErrorCodes.MIDDLEWAREIMPORTFAILURE, 76, "Could not import middleware"),
    (ErrorCodes.MISSINGINPUTFILE, 77, "Input file missing on storage"),
    (ErrorCodes.PANDAQUEUENOTACTIVE, 78, "PanDA queue is not active"),
    (ErrorCodes.COMMUNICATIONFAILURE, 79, "No answer from the PanDA server"),  # Pilot 3's status for 1318
    (ErrorCodes.KILLSIGNAL, 137, "Ended by a kill signal"),
    (ErrorCodes.SIGTERM, 143, "Ended by SIGTERM"),
    (ErrorCodes.SIGQUIT, 131, "Ended by SIGQUIT"),
    (ErrorCodes.SIGSEGV, 139, "Ended by SIGSEGV"),
    (ErrorCodes.SIGXCPU, 158, "Ended by SIGXCPU"),
    (ErrorCodes.SIGUSR1, 144, "Ended by SIGUSR1"),
    (ErrorCodes.SIGBUS, 138, "Ended by SIGBUS"),
)


def get_error_code_translation_dictionary() -> Dict[int, List[Union[int, str]]]:
    """Return {pilot error code: [shell exit status, meaning]} (a fresh copy)."""
    return {code: [status, text] for code, status, text in _TRANSLATION}


def convert_to_pilot_error_code(exit_code: int) -> int:
    """Return the first pilot error code that maps to the given shell exit status, or -1."""
    for code, status, _ in _TRANSLATION:
        if status == exit_code:
            return code
    return -1


def shell_exit_code(pilot_code: int) -> int:
    """Return the process exit status for a pilot error code: 0 for 0, 1 for unlisted codes."""
    if not pilot_code:
        return 0
    for code, status, _ in _TRANSLATION:
        if code == pilot_code:
            return status
    logger.debug("no exit status defined for pilot error code %s: using 1", pilot_code)
    return 1


def random_uuid() -> str:
    """A random (version 4) UUID in its canonical text form, e.g. for an output file's GUID.

    Built from ``os.urandom`` with the version and variant bits set as RFC 4122 asks, so the pilot
    does not load the ``uuid`` module for it.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
