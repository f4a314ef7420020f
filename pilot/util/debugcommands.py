"""Debug commands sent by the server in an updateJob reply (compat 4.6): tail, ls, ps, du and gdb.

A command is parsed into an argument list and run without a shell, so nothing in its text can
start another command. Each verb accepts a fixed set of options; every path argument must stay
inside the job's work dir (after resolving symlinks and ``..``). ``ps`` always lists the payload's
own processes, ``gdb`` may only attach to one of them and writes a core file (``core.<pid>``) into
the work dir with ``gdb --batch -ex gcore``.

    cmd = parse_debug_command("tail -n 20 payload.stdout", workdir)
    text = run_debug_command(cmd, workdir, payload_pids=[...], timeout=60)
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from typing import Iterable, List, Optional

from pilot.util.processes import run_command

VERBS = ("tail", "ls", "ps", "du", "gdb")
#: characters that never appear in an accepted command (a shell would give them meaning)
FORBIDDEN = set(";&|`$<>\n\r\x00\\")
#: options without a value, per verb
_FLAGS = {
    "tail": {"-q", "-v", "--quiet", "--silent", "--verbose"},
    "ls": {"--all", "--human-readable", "--full-time", "--reverse", "--recursive", "--size"},
    "du": {"--summarize", "--human-readable", "--apparent-size", "--all", "--total", "--bytes"},
}
#: letters that may be combined in a short option (``-ltr``), per verb
_LETTERS = {"tail": "qv", "ls": "aAlhtrRSdF1insc", "du": "shkmacbx"}
#: options that take a number, per verb (``-n 5``, ``-n5``, ``--lines=5``)
_NUMERIC = {"tail": ("-n", "-c", "--lines", "--bytes"), "du": ("-d", "--max-depth")}
_NUMBER = re.compile(r"^\+?\d{1,9}$")
_PID = re.compile(r"^\d{1,9}$")
#: ps columns shown for the payload's processes
PS_FORMAT = "pid,ppid,pgid,stat,etime,time,rss,vsz,args"


@dataclass
class DebugCommand:
    """A parsed, checked debug command."""

    verb: str
    args: List[str] = field(default_factory=list)
    text: str = ""
    pid: Optional[int] = None  # gdb: the process to dump


def is_debug_command(text: str) -> bool:
    """True for server text that asks for a debug command: it starts with a known verb.

    ``ls; touch x`` counts too (and is then refused by :func:`parse_debug_command`), so the
    server sees why nothing ran.
    """
    first = re.split(r"[\s;&|<>`$()]", str(text or "").strip(), maxsplit=1)[0]
    return first in VERBS


def parse_debug_command(text: str, workdir: str) -> DebugCommand:
    """Check and split ``text``; raise ValueError (with the reason) when it is not acceptable."""
    text = str(text or "").strip()
    bad = sorted(FORBIDDEN.intersection(text))
    if bad:
        raise ValueError(f"forbidden character(s) {''.join(bad)!r} in debug command")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot parse debug command: {exc}") from exc
    if not words or words[0] not in VERBS:
        raise ValueError(f"unknown debug command {words[0] if words else ''!r} (allowed: {', '.join(VERBS)})")
    verb, rest = words[0], words[1:]
    if verb == "ps":
        return DebugCommand("ps", [], text)
    if verb == "gdb":
        return DebugCommand("gdb", [], text, pid=_gdb_pid(rest))
    return DebugCommand(verb, _check_arguments(verb, rest, workdir), text)


def _gdb_pid(words: List[str]) -> Optional[int]:
    """The process id named by ``--pid N``, ``--pid=N``, ``-p N`` or a bare number (None: let the pilot choose)."""
    for i, word in enumerate(words):
        if word.startswith("--pid="):
            value = word.split("=", 1)[1]
        elif word in ("--pid", "-p") and i + 1 < len(words):
            value = words[i + 1]
        elif _PID.match(word):
            value = word
        else:
            continue
        if not _PID.match(value):
            raise ValueError(f"bad process id {value!r} for gdb")
        return int(value)
    return None


def _check_arguments(verb: str, words: List[str], workdir: str) -> List[str]:
    args: List[str] = []
    paths = 0
    i = 0
    while i < len(words):
        word = words[i]
        numeric = _numeric_option(verb, word)
        if numeric is not None:
            option, value = numeric
            if value is None:  # the number is the next word
                if i + 1 >= len(words):
                    raise ValueError(f"option {option} needs a number")
                value = words[i + 1]
                i += 1
            if not _NUMBER.match(value):
                raise ValueError(f"option {option} needs a number, not {value!r}")
            args += [option, value] if not option.startswith("--") else [f"{option}={value}"]
        elif word.startswith("-") and word != "-":
            if not _flag_allowed(verb, word):
                raise ValueError(f"option {word!r} is not allowed for {verb}")
            args.append(word)
        else:
            args.append(confine(word, workdir))
            paths += 1
        i += 1
    if not paths:
        args.append(os.path.realpath(workdir) if verb != "tail" else confine(_default_tail_file(workdir), workdir))
    return args


def _numeric_option(verb: str, word: str) -> Optional[tuple]:
    """(option, value or None) when ``word`` is a numeric option of ``verb``."""
    for option in _NUMERIC.get(verb, ()):
        if word == option:
            return option, None
        if option.startswith("--") and word.startswith(option + "="):
            return option, word.split("=", 1)[1]
        if not option.startswith("--") and word.startswith(option) and len(word) > len(option):
            return option, word[len(option):]
    if verb == "tail" and re.match(r"^-\d{1,9}$", word):  # tail -20
        return "-n", word[1:]
    return None


def _flag_allowed(verb: str, word: str) -> bool:
    if word in _FLAGS.get(verb, set()):
        return True
    letters = _LETTERS.get(verb, "")
    return bool(re.match(r"^-[A-Za-z0-9]+$", word)) and all(c in letters for c in word[1:])


def confine(path: str, workdir: str) -> str:
    """``path`` (relative to ``workdir`` unless absolute) resolved; ValueError when it leaves the work dir."""
    base = os.path.realpath(workdir)
    full = os.path.realpath(os.path.join(base, path))
    if full != base and not full.startswith(base + os.sep):
        raise ValueError(f"path {path!r} is outside the job work dir")
    return full


def _default_tail_file(workdir: str) -> str:
    return newest_payload_log(workdir) or "payload.stdout"


def newest_payload_log(workdir: str, names: Iterable[str] = ("payload.stdout", "payload.stderr")) -> str:
    """The most recently modified payload log in ``workdir``: the payload's stdout/stderr or a ``log.*`` file."""
    candidates = []
    try:
        entries = list(os.scandir(workdir))
    except OSError:
        return ""
    wanted = set(names)
    for entry in entries:
        if entry.name in wanted or entry.name.startswith("log."):
            try:
                if entry.is_file(follow_symlinks=False):
                    candidates.append((entry.stat(follow_symlinks=False).st_mtime, entry.path))
            except OSError:
                continue
    return max(candidates)[1] if candidates else ""


def run_debug_command(cmd: DebugCommand, workdir: str, payload_pids: List[int], timeout: float = 60) -> str:
    """Run a parsed command (no shell) and return its output (or why it was not run)."""
    if cmd.verb == "ps":
        if not payload_pids:
            return "ps: no payload process is running"
        result = run_command(["ps", "-o", PS_FORMAT, "-p", ",".join(str(p) for p in payload_pids)], timeout=timeout)
        return result.stdout or result.stderr
    if cmd.verb == "gdb":
        return _gcore(cmd, workdir, payload_pids, timeout)
    result = run_command([cmd.verb] + cmd.args, timeout=timeout, cwd=workdir)
    text = result.stdout
    if result.exit_code:
        text += result.stderr
    return text


def gdb_target(cmd: DebugCommand, payload_pids: List[int], rss_of: Optional[dict] = None) -> Optional[int]:
    """The process gdb dumps: the one named (if it belongs to the payload), else the payload's largest."""
    if cmd.pid is not None:
        return cmd.pid if cmd.pid in payload_pids else None
    if not payload_pids:
        return None
    rss_of = rss_of or {}
    return max(payload_pids, key=lambda p: (rss_of.get(p, 0), p))


def core_path(workdir: str, pid: int) -> str:
    return os.path.join(workdir, f"core.{pid}")


def _gcore(cmd: DebugCommand, workdir: str, payload_pids: List[int], timeout: float) -> str:
    gdb = shutil.which("gdb")
    if gdb is None:
        return "gdb is not installed on this node: no core dump was made"
    target = cmd.pid
    if target is None or target not in payload_pids:
        return f"gdb: process {target} is not part of the payload: no core dump was made"
    path = core_path(workdir, target)
    result = run_command([gdb, "--batch", "--nx", "-p", str(target), "-ex", f"gcore {path}"], timeout=timeout,
                         cwd=workdir)
    if os.path.exists(path):
        return f"gdb: core dump of process {target} written to {os.path.basename(path)}"
    return f"gdb could not dump process {target} (exit {result.exit_code}): {(result.stderr or result.stdout)[-500:]}"
