"""The payload guard's status record: a small JSON encoder and the safe ways to hand the record over.

The guard is started for every job, so it does not import ``json`` (with the ``re`` it loads, that
alone would cost more than half of the rest of the guard's start-up). The record goes to the pilot
through an inherited pipe (``--status-fd``: nothing the payload can forge or redirect) and, for
people and older callers, to a file written as a new file and renamed into place (never through a
name the payload could have prepared).
"""

from __future__ import annotations

import os
import sys

#: at most this much of the record is written to the status pipe (it must fit the pipe's buffer:
#: the pilot reads it only after the guard has ended)
MAX_PIPE_RECORD = 60000

#: the characters json.dumps escapes with a letter
SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _json_string(text: str) -> str:
    """``text`` as a JSON string, escaped as ``json.dumps`` does (non-ASCII as ``\\uXXXX``)."""
    out = []
    for char in text:
        code = ord(char)
        if char in SHORT_ESCAPES:
            out.append(SHORT_ESCAPES[char])
        elif 0x20 <= code < 0x7f:
            out.append(char)
        elif code > 0xffff:
            code -= 0x10000
            out.append(f"\\u{0xd800 | (code >> 10):04x}\\u{0xdc00 | (code & 0x3ff):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return '"' + "".join(out) + '"'


def json_text(value: object) -> str:
    """The JSON text of the status record's values (None, bool, int, float, str, list, dict).

    The guard's own small encoder: ``import json`` alone (with the ``re`` it loads) would cost more
    than half of the rest of the guard's start-up.
    """
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(value)]
        return float.__repr__(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_json_string(str(key))}: {json_text(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(json_text(item) for item in value) + "]"
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_status_file(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a fresh temporary name (O_EXCL, O_NOFOLLOW) renamed over it."""
    tmp = f"{path}.tmp"
    try:
        os.unlink(tmp)  # removes a link the payload may have planted, never what it points at
    except OSError:
        pass
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o644)
    try:
        os.write(fd, text.encode(errors="replace"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_status(path: str, fd: "int | None", status: dict) -> None:
    """Hand the record over: to the pipe ``fd`` (when given) and to the file ``path`` (when given).

    A file that cannot be written (a full disk, the work dir gone, a name taken) is left out with a
    line on stderr: the pipe record and the guard's exit status still say what happened.
    """
    text = json_text(status)
    if fd is not None:
        data = text.encode(errors="replace")[:MAX_PIPE_RECORD]
        try:
            while data:
                data = data[os.write(fd, data):]
        except OSError:
            pass
    if path:
        try:
            write_status_file(path, text)
        except OSError as exc:
            sys.stderr.write(f"payloadguard: cannot write the status file {path}: {exc}\n")
            try:
                os.unlink(f"{path}.tmp")
            except OSError:
                pass
