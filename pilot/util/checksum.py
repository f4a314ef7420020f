"""The one checksum helper: adler32 (8 lower-case hex digits) and md5 over chunks of bytes, md5 of bytes.

A leaf module: :mod:`pilot.util.safefile` checksums a checked file with it and
:func:`pilot.util.filehandling.calculate_checksum` checksums a path (both names stay importable from
``pilot.util.filehandling``).
"""

from __future__ import annotations

import zlib
from typing import Any

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException


def new_md5() -> Any:
    """A new md5 digest object.

    Taken from the small ``_md5`` module when the interpreter has it: ``hashlib`` would also load
    OpenSSL's digest tables and blake2 (0.4 MB of the pilot's memory) for the one md5 a job needs.
    """
    try:
        from _md5 import md5  # type: ignore[import-not-found]  # CPython's private module: no stub
    except ImportError:  # an interpreter built without it (FIPS builds): hashlib's OpenSSL md5
        from hashlib import md5
    return md5()


def md5_hexdigest(data: bytes) -> str:
    """The md5 of ``data`` as 32 hex digits."""
    digest = new_md5()
    digest.update(data)
    return digest.hexdigest()


def checksum_of_chunks(chunks: Any, algorithm: str = "adler32", what: str = "") -> str:
    """The checksum of the bytes ``chunks`` yields: adler32 as 8 lower-case hex digits, or an md5 hex digest."""
    algorithm = algorithm.lower()
    try:
        if algorithm == "adler32":
            value = 1
            for chunk in chunks:
                value = zlib.adler32(chunk, value)
            return f"{value & 0xffffffff:08x}"
        if algorithm in ("md5", "md5sum"):
            digest = new_md5()
            for chunk in chunks:
                digest.update(chunk)
            return digest.hexdigest()
    except OSError as exc:
        raise PilotException(f"cannot checksum {what}: {exc}", code=ErrorCodes.CHECKSUMCALCFAILURE) from exc
    raise PilotException(f"unknown checksum type {algorithm!r}", code=ErrorCodes.UNKNOWNCHECKSUMTYPE)


def checksums_equal(a: str, b: str) -> bool:
    """Compare checksum strings, ignoring case and the leading zeros some tools drop."""
    return (a or "").lower().lstrip("0") == (b or "").lower().lstrip("0")
