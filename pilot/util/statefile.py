"""The pilot's own state on disk (outbox, recovery records, job ledger) and the one way it is read back.

Layout, under the *state root* (``-a`` work dir, else the directory the pilot was started in), shared
by the pilots started in the same place (one *pilot tree*)::

    pilot_outbox/<PandaID>.final.json    final updates not yet acknowledged by the server
    pilot_outbox/ranges-<key>.json       event-range updates not yet delivered
    pilot_recovery/<PandaID>.json        jobs between payload end and acknowledged final update
    pilot_ledger/<PandaID>.received      every job this pilot tree was handed (empty file)
    pilot_ledger/<PandaID>.acked         the server acknowledged its final update (empty file)

The directories are made with mode 0700 and are masked in the payload's mount namespace (an empty
read-only tmpfs over each, see :mod:`pilot.util.payloadguard`). Because masking may not be
available on a node, nothing read back from them is believed before it is checked:

- a name must match the exact pattern of its kind (a PandaID is 1-20 digits);
- the entry is opened through the pilot's one checked open (:mod:`pilot.util.safefile`:
  ``O_NOFOLLOW|O_NONBLOCK``, a link only to a regular file inside the state directory), judged by
  ``fstat`` on the descriptor (a regular file, owned by the pilot's uid, no larger than
  :data:`MAX_RECORD_BYTES`) and read with that bound, so a FIFO, a device, a symlink to
  ``/dev/zero`` or out of the directory, a directory or a huge file never blocks or floods the pilot;
- what fails is *set aside*: renamed in place to ``<name>.rejected-<time>`` (a name no scan accepts)
  with a log line, and never used.

The records' contents are checked by their owners (:mod:`pilot.control.reporting`,
:mod:`pilot.control.recovery`): the PandaID in the record equals the one in its name and is in the
ledger of this pilot tree; a work dir lies inside the tree and is ``PanDA_Pilot-<PandaID>``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from dataclasses import dataclass
from typing import Any, Iterator, List, Tuple

logger = logging.getLogger(__name__)

#: the largest record the pilot writes is a final update with its metadata (a few hundred kB at most)
MAX_RECORD_BYTES = 8 * 1024 * 1024
#: the most entries one scan of a state directory looks at (a flooded directory cannot stall start-up)
MAX_ENTRIES = 10000
PANDAID_RE = re.compile(r"^[0-9]{1,20}$")
OUTBOX_DIR, RECOVERY_DIR, LEDGER_DIR = "pilot_outbox", "pilot_recovery", "pilot_ledger"


class RejectedRecord(ValueError):
    """A state file that is not what the pilot wrote: why it was set aside."""


def valid_pandaid(value: Any) -> bool:
    """True for a PandaID as the pilot stores it (decimal digits only)."""
    return isinstance(value, str) and bool(PANDAID_RE.match(value))


def ensure_dir(path: str) -> str:
    """Create a private state directory (0700); a non-directory (or a symlink) in its place is set aside."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        set_aside(os.path.dirname(path) or ".", os.path.basename(path), "not a directory")
        st = None
    if st is None:
        os.makedirs(path, mode=0o700, exist_ok=True)
    else:
        try:
            os.chmod(path, 0o700, follow_symlinks=False)
        except (OSError, NotImplementedError):
            pass
    return path


def set_aside(directory: str, name: str, reason: str) -> None:
    """Rename ``name`` in ``directory`` to a name no scan accepts, with a log line (never opened)."""
    target = f"{name}.rejected-{int(time.time())}-{os.urandom(3).hex()}"
    logger.warning("state file %s set aside as %s: %s", os.path.join(directory, name), target, reason)
    try:
        os.rename(os.path.join(directory, name), os.path.join(directory, target))
    except OSError as exc:
        logger.warning("cannot set %s aside (%s): it is ignored", name, exc)


def read_record(directory: str, name: str, limit: int = MAX_RECORD_BYTES) -> dict:
    """The JSON object in ``directory/name``, read as described in the module doc; raises RejectedRecord.

    Opened through the pilot's one checked open (:func:`pilot.util.safefile.open_checked`, with the
    state directory as the root a link may not leave), then owner and size are judged on the
    descriptor's ``fstat`` and no more than that size is read.
    """
    from pilot.util.safefile import UnsafeFile, open_checked

    try:
        handle = open_checked(os.path.join(directory, name), root=directory)
    except UnsafeFile as exc:
        raise RejectedRecord(f"cannot open safely: {exc.get_detail()}") from None
    with handle:
        if handle.stat.st_uid != os.geteuid():
            raise RejectedRecord(f"owned by uid {handle.stat.st_uid}, not by the pilot ({os.geteuid()})")
        if handle.size > limit:
            raise RejectedRecord(f"{handle.size} bytes, more than a record can be ({limit})")
        data = handle.read(limit)
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RejectedRecord(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise RejectedRecord("not a JSON object")
    return value


def scan(directory: str, pattern: "re.Pattern[str]") -> List[Tuple[str, re.Match]]:
    """Sorted ``(name, match)`` of the entries of ``directory`` whose names match ``pattern`` (bounded)."""
    if not os.path.isdir(directory) or os.path.islink(directory):
        return []
    found = []
    try:
        with os.scandir(directory) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_ENTRIES:
                    logger.warning("%s holds more than %d entries: the rest is ignored", directory, MAX_ENTRIES)
                    break
                match = pattern.match(entry.name)
                if match:
                    found.append((entry.name, match))
    except OSError as exc:
        logger.warning("cannot list %s: %s", directory, exc)
    return sorted(found)


def read_valid(directory: str, pattern: "re.Pattern[str]") -> Iterator[Tuple[str, re.Match, dict]]:
    """``(name, match, record)`` of every readable record; the unreadable ones are set aside."""
    for name, match in scan(directory, pattern):
        try:
            yield name, match, read_record(directory, name)
        except RejectedRecord as exc:
            set_aside(directory, name, str(exc))


class Ledger:
    """The PandaIDs this pilot tree was handed and those whose final update the server acknowledged.

    One empty file per fact, created ``O_EXCL|O_NOFOLLOW`` (atomic, and an inode is all it needs, so
    it is written even on a file system with no free blocks left).
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _mark(self, jobid: str, kind: str) -> bool:
        if not valid_pandaid(jobid):
            return False
        path = os.path.join(self.directory, f"{jobid}.{kind}")
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        except FileExistsError:
            if not self._has(jobid, kind):  # something else took the name: replace it
                set_aside(self.directory, f"{jobid}.{kind}", "not an empty regular file of the pilot")
                return self._mark(jobid, kind)
        except OSError as exc:
            logger.error("job %s: cannot record '%s' in the ledger: %s", jobid, kind, exc)
            return False
        return True

    def _has(self, jobid: str, kind: str) -> bool:
        if not valid_pandaid(jobid):
            return False
        try:
            st = os.lstat(os.path.join(self.directory, f"{jobid}.{kind}"))
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and st.st_size == 0

    def received(self, jobid: str) -> bool:
        """Record that this pilot tree was handed ``jobid``."""
        return self._mark(jobid, "received")

    def acknowledged(self, jobid: str) -> bool:
        """Record that the server acknowledged the final update of ``jobid`` (before anything is removed)."""
        return self._mark(jobid, "acked")

    def knows(self, jobid: str) -> bool:
        """Whether this pilot tree was handed ``jobid``."""
        return self._has(jobid, "received")

    def is_acknowledged(self, jobid: str) -> bool:
        return self._has(jobid, "acked")


def pilot_file_names() -> List[str]:
    """The names of the pilot's own files in its main work dir (from the configuration)."""
    from pilot.util.config import config  # loaded by then; kept out of this module's import cost

    def value(section: str, key: str, default: str) -> str:
        try:
            return str(getattr(config, section).get(key, default) or default)
        except Exception:  # a section missing from a hand-written config
            return default

    names = [value("Pilot", "pilotlog", "pilotlog.txt"), value("Pilot", "timing_file", "pilot_timing.json"),
             value("Pilot", "jobid_file", "pandaIDs.out"),
             os.path.basename(value("Information", "queuedata_cache", "queuedata.json")),
             os.path.basename(value("Information", "storages_cache", "cric_ddmendpoints.json")),
             f"pilot_{os.getpid()}.prom"]
    return names


@dataclass(frozen=True)
class StateLayout:
    """Where one pilot tree keeps its state (see the module doc)."""

    root: str
    outbox_name: str = OUTBOX_DIR  # ``[Pilot] outbox_dir``

    @property
    def outbox(self) -> str:
        return os.path.join(self.root, self.outbox_name)

    @property
    def recovery(self) -> str:
        return os.path.join(self.root, RECOVERY_DIR)

    @property
    def ledger(self) -> str:
        return os.path.join(self.root, LEDGER_DIR)

    def create(self) -> "StateLayout":
        """Make the state directories (0700) so that they exist, and can be masked, before any payload."""
        for path in (self.outbox, self.recovery, self.ledger):
            ensure_dir(path)
        return self

    def masks(self, mainworkdir: str = "") -> List[str]:
        """What the payload must not see or write: the state directories and the pilot's own files.

        The pilot's files of its main work dir (log, timing, PandaID list, queue and storage data
        caches, metrics file) are listed when they exist (a file is masked by a read-only bind,
        which needs it to exist when the payload starts).
        """
        paths = [self.outbox, self.recovery, self.ledger]
        home = mainworkdir or self.root
        for name in pilot_file_names():
            path = name if os.path.isabs(name) else os.path.join(home, name)
            if os.path.isfile(path) and not os.path.islink(path):
                paths.append(path)
        return [os.path.abspath(p) for p in paths]

    def workdir_inside(self, workdir: Any, jobid: str) -> bool:
        """True when ``workdir`` is this tree's work dir of ``jobid``: a real directory inside the root."""
        if not isinstance(workdir, str) or not workdir or os.path.basename(workdir) != f"PanDA_Pilot-{jobid}":
            return False
        root = os.path.realpath(self.root)
        real = os.path.realpath(workdir)
        if real != os.path.abspath(workdir) or not real.startswith(root.rstrip(os.sep) + os.sep):
            return False
        depth = real[len(root):].strip(os.sep).count(os.sep)
        if depth > 1:  # <root>/PanDA_Pilot-<id> or <root>/PanDA_Pilot2_<pid>_<t>/PanDA_Pilot-<id>
            return False
        if depth == 1 and not os.path.basename(os.path.dirname(real)).startswith("PanDA_Pilot2_"):
            return False
        try:
            st = os.lstat(real)
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode)
