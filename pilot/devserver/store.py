"""SQLite storage of the development server: jobs, updates, requests, event ranges, traces, sinks.

One connection is shared by all handler threads and guarded by a lock; every public method is one
transaction, so "pop the oldest activated job" and "record a final update once" are atomic.
The database uses WAL mode so another process (``show --db``) can read while the server writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional

from .protocol import ALREADY_DONE, FINAL_STATES

FIRST_PANDAID = 1001

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    pandaid INTEGER PRIMARY KEY,
    queue TEXT,
    state TEXT NOT NULL,
    definition TEXT NOT NULL,
    created REAL NOT NULL,
    sent_at REAL,
    state_at REAL,
    final_state TEXT,
    final_at REAL,
    final_update_id INTEGER,
    command TEXT,
    n_updates INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pandaid INTEGER NOT NULL,
    time REAL NOT NULL,
    state TEXT,
    is_final INTEGER NOT NULL DEFAULT 0,
    duplicate INTEGER NOT NULL DEFAULT 0,
    after_final INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    reply_command TEXT,
    fields TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS updates_pandaid ON updates (pandaid);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    method TEXT NOT NULL,
    client TEXT,
    scheme TEXT,
    http_status INTEGER,
    injected TEXT,
    result TEXT,
    fields TEXT NOT NULL,
    bytes_in INTEGER NOT NULL DEFAULT 0,
    bytes_out INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_method ON requests (method);
CREATE TABLE IF NOT EXISTS eventranges (
    range_id TEXT PRIMARY KEY,
    pandaid INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    definition TEXT NOT NULL,
    status TEXT NOT NULL,
    assigned_at REAL,
    updated_at REAL,
    n_updates INTEGER NOT NULL DEFAULT 0,
    last_update TEXT
);
CREATE INDEX IF NOT EXISTS eventranges_pandaid ON eventranges (pandaid, seq);
CREATE TABLE IF NOT EXISTS traces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sinks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    time REAL NOT NULL,
    body TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class UpdateOutcome:
    """What ``record_update`` did with one updateJob call."""

    found: bool
    command: str
    update_id: int
    is_final: bool = False
    duplicate: bool = False
    note: str = ""


def _dumps(obj: Any) -> str:
    """Serialise to JSON text, turning anything exotic into strings."""
    return json.dumps(obj, default=str)


class Store:
    """Thread-safe access to the dev server's SQLite database."""

    def __init__(self, path: str) -> None:
        """Open (and create if needed) the database at ``path`` (``:memory:`` works for tests)."""
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0)
        self._conn.row_factory = sqlite3.Row
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._lock, self._conn:
            self._conn.executescript(_SCHEMA)
            self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Bring a database made by an older server up to the current schema (new columns only)."""
        have = {row[1] for row in self._conn.execute("PRAGMA table_info(requests)")}
        for column in ("bytes_in", "bytes_out"):
            if column not in have:
                self._conn.execute(f"ALTER TABLE requests ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def reset(self) -> None:
        """Delete every record (jobs, updates, requests, ranges, traces, sinks)."""
        with self._lock, self._conn:
            for table in ("jobs", "updates", "requests", "eventranges", "traces", "sinks"):
                self._conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    # ------------------------------------------------------------------ jobs

    def add_job(self, definition: dict[str, Any], pandaid: Optional[int] = None,
                queue: Optional[str] = None) -> int:
        """Store a new activated job and return its PandaID (the next free one when not given)."""
        now = time.time()
        with self._lock, self._conn:
            if pandaid is None:
                row = self._conn.execute("SELECT MAX(pandaid) FROM jobs").fetchone()
                pandaid = max(FIRST_PANDAID, (row[0] or 0) + 1)
            elif self._conn.execute("SELECT 1 FROM jobs WHERE pandaid=?", (pandaid,)).fetchone():
                raise KeyError(f"PandaID {pandaid} already exists")
            self._conn.execute(
                "INSERT INTO jobs (pandaid, queue, state, definition, created, state_at) VALUES (?,?,?,?,?,?)",
                (pandaid, queue, "activated", _dumps(definition), now, now))
        return pandaid

    def pop_job(self, sites: Iterable[str], background: bool = False) -> Optional[tuple[int, dict[str, Any]]]:
        """Take the oldest activated job for one of ``sites`` (or without queue) and mark it sent.

        A job submitted with the private key ``_background`` true is background-capable (OneBox): it
        goes only to a request with ``background`` true, and such a request gets only those jobs.
        """
        names = sorted({site for site in sites if site})
        marks = ",".join("?" for _ in names)
        where = f"(queue IS NULL OR queue IN ({marks}))" if names else "queue IS NULL"
        now = time.time()
        with self._lock, self._conn:
            rows = self._conn.execute(
                f"SELECT pandaid, definition FROM jobs WHERE state='activated' AND {where} "  # noqa: S608
                "ORDER BY created, pandaid", names)
            row = next((found for found in rows
                        if bool(json.loads(found["definition"]).get("_background")) == bool(background)), None)
            if row is None:
                return None
            self._conn.execute("UPDATE jobs SET state='sent', sent_at=?, state_at=? WHERE pandaid=?",
                               (now, now, row["pandaid"]))
        return row["pandaid"], json.loads(row["definition"])

    def _job_row(self, pandaid: int) -> Optional[sqlite3.Row]:
        """Fetch the raw jobs row."""
        row: Optional[sqlite3.Row] = self._conn.execute("SELECT * FROM jobs WHERE pandaid=?", (pandaid,)).fetchone()
        return row

    @staticmethod
    def _job_dict(row: sqlite3.Row) -> dict[str, Any]:
        """Convert a jobs row into a plain dictionary."""
        out = dict(row)
        out["definition"] = json.loads(out["definition"])
        return out

    def get_job(self, pandaid: int) -> Optional[dict[str, Any]]:
        """Return one job (without its updates) or None."""
        with self._lock:
            row = self._job_row(pandaid)
        return self._job_dict(row) if row else None

    def list_jobs(self) -> list[dict[str, Any]]:
        """Return a summary of every job, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT pandaid, queue, state, final_state, created, sent_at, final_at, n_updates, command "
                "FROM jobs ORDER BY pandaid").fetchall()
        return [dict(row) for row in rows]

    def job_states(self, pandaids: Iterable[int]) -> list[Optional[tuple[str, str]]]:
        """Return (state, attemptNr) for each id, None when unknown (for getStatus)."""
        out: list[Optional[tuple[str, str]]] = []
        with self._lock:
            for pandaid in pandaids:
                row = self._job_row(pandaid)
                if row is None:
                    out.append(None)
                else:
                    definition = json.loads(row["definition"])
                    out.append((row["state"], str(definition.get("attemptNr", 1))))
        return out

    def requeue(self, pandaid: int) -> bool:
        """Hand the same PandaID out again (a server fault, for tests); its records stay. False if unknown."""
        with self._lock, self._conn:
            cur = self._conn.execute("UPDATE jobs SET state='activated', state_at=? WHERE pandaid=?",
                                     (time.time(), pandaid))
        return cur.rowcount == 1

    def set_command(self, pandaid: int, command: Optional[str]) -> bool:
        """Queue a command for the job's next updateJob reply; False when the job is unknown."""
        with self._lock, self._conn:
            cur = self._conn.execute("UPDATE jobs SET command=? WHERE pandaid=?", (command, pandaid))
        return cur.rowcount == 1

    # --------------------------------------------------------------- updates

    def _insert_update(self, pandaid: int, state: str, fields: dict[str, Any], **flags: Any) -> int:
        """Insert one updates row and return its id."""
        cur = self._conn.execute(
            "INSERT INTO updates (pandaid, time, state, is_final, duplicate, after_final, note, reply_command, fields) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (pandaid, time.time(), state, int(flags.get("is_final", False)), int(flags.get("duplicate", False)),
             int(flags.get("after_final", False)), flags.get("note", ""), flags.get("reply_command"),
             _dumps(fields)))
        return int(cur.lastrowid or 0)

    def record_update(self, pandaid: int, state: str, fields: dict[str, Any]) -> UpdateOutcome:
        """Record an updateJob call and move the job's state; the first final state wins.

        Later reports of a job that already has its final state are stored, flagged (``duplicate``
        for another final report, ``after_final`` for any report) and answered with "alreadydone",
        like the real server; the job keeps its first final state and final update.
        """
        with self._lock, self._conn:
            row = self._job_row(pandaid)
            if row is None:
                uid = self._insert_update(pandaid, state, fields, note="unknown job")
                return UpdateOutcome(False, "NULL", uid, note="unknown job")
            is_final = state in FINAL_STATES
            if row["final_state"]:
                note = "after final"
                if is_final:
                    note = "duplicate final" if state == row["final_state"] else \
                        f"conflicting final (kept {row['final_state']})"
                uid = self._insert_update(pandaid, state, fields, duplicate=is_final, after_final=True,
                                          note=note, reply_command=ALREADY_DONE)
                self._conn.execute("UPDATE jobs SET n_updates=n_updates+1 WHERE pandaid=?", (pandaid,))
                return UpdateOutcome(True, ALREADY_DONE, uid, duplicate=is_final, note=note)
            command = row["command"] or "NULL"
            new_state = state
            if row["state"] == "running" and state == "starting":
                new_state = "running"  # the dispatcher never moves a job back to starting
            uid = self._insert_update(pandaid, state, fields, is_final=is_final, reply_command=command,
                                      note="final" if is_final else "")
            now = time.time()
            if is_final:
                self._conn.execute(
                    "UPDATE jobs SET state=?, state_at=?, final_state=?, final_at=?, final_update_id=?, command=NULL, "
                    "n_updates=n_updates+1 WHERE pandaid=?", (new_state, now, state, now, uid, pandaid))
                # ranges the job took but never reported go back to the pool (for another job of the jobset)
                self._conn.execute("UPDATE eventranges SET status='ready', assigned_at=NULL "
                                   "WHERE pandaid=? AND status='assigned'", (pandaid,))
            else:
                self._conn.execute(
                    "UPDATE jobs SET state=?, state_at=?, command=NULL, n_updates=n_updates+1 WHERE pandaid=?",
                    (new_state, now, pandaid))
            return UpdateOutcome(True, command, uid, is_final=is_final, note="final" if is_final else "")

    def updates(self, pandaid: int) -> list[dict[str, Any]]:
        """Return every recorded update of a job, oldest first."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM updates WHERE pandaid=? ORDER BY id", (pandaid,)).fetchall()
        out = []
        for row in rows:
            item = dict(row)
            item["fields"] = json.loads(item["fields"])
            for key in ("is_final", "duplicate", "after_final"):
                item[key] = bool(item[key])
            out.append(item)
        return out

    # -------------------------------------------------------------- requests

    def record_request(self, method: str, fields: dict[str, Any], client: str = "", scheme: str = "",
                       http_status: int = 0, injected: Optional[str] = None, result: str = "",
                       bytes_in: int = 0, bytes_out: int = 0) -> int:
        """Store one protocol request as received (``bytes_in``/``bytes_out``: body sizes on the wire)."""
        with self._lock, self._conn:
            cur = self._conn.execute(
                "INSERT INTO requests (time, method, client, scheme, http_status, injected, result, fields, "
                "bytes_in, bytes_out) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (time.time(), method, client, scheme, http_status, injected, result, _dumps(fields),
                 int(bytes_in), int(bytes_out)))
        return int(cur.lastrowid or 0)

    def requests(self, method: Optional[str] = None) -> list[dict[str, Any]]:
        """Return recorded requests (optionally of one method), oldest first."""
        query = "SELECT * FROM requests"
        args: tuple[Any, ...] = ()
        if method:
            query += " WHERE method=?"
            args = (method,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY id", args).fetchall()
        out = []
        for row in rows:
            item = dict(row)
            item["fields"] = json.loads(item["fields"])
            out.append(item)
        return out

    # ---------------------------------------------------------- event ranges

    def add_ranges(self, pandaid: int, ranges: list[dict[str, Any]]) -> list[str]:
        """Attach event ranges to a job (status ready); ranges without an id get ``<pandaid>-<n>``."""
        ids = []
        with self._lock, self._conn:
            row = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM eventranges WHERE pandaid=?",
                                     (pandaid,)).fetchone()
            seq = int(row[0])
            for entry in ranges:
                seq += 1
                item = dict(entry)
                item.setdefault("eventRangeID", f"{pandaid}-{seq}")
                self._conn.execute(
                    "INSERT INTO eventranges (range_id, pandaid, seq, definition, status) VALUES (?,?,?,?,?)",
                    (str(item["eventRangeID"]), pandaid, seq, _dumps(item), "ready"))
                ids.append(str(item["eventRangeID"]))
        return ids

    def take_ranges(self, pandaid: int, count: int, jobsetid: str = "") -> list[dict[str, Any]]:
        """Assign up to ``count`` ready ranges of a job; each range is handed out at most once.

        With a ``jobsetid`` the ready ranges of the other jobs of that jobset follow the job's own
        (event-service consumers share their jobset's ranges).
        """
        now = time.time()
        where = "pandaid=?"
        args: List[object] = [pandaid]
        if jobsetid and jobsetid.upper() not in ("NULL", "NONE"):
            where = ("(pandaid=? OR pandaid IN (SELECT pandaid FROM jobs "
                     "WHERE CAST(json_extract(definition, '$.jobsetID') AS TEXT)=?))")
            args.append(str(jobsetid))
        with self._lock, self._conn:
            rows = self._conn.execute(
                f"SELECT range_id, definition FROM eventranges WHERE {where} AND status='ready' "  # noqa: S608
                "ORDER BY pandaid<>?, pandaid, seq LIMIT ?", (*args, pandaid, max(0, count))).fetchall()
            for row in rows:
                self._conn.execute("UPDATE eventranges SET status='assigned', assigned_at=? WHERE range_id=?",
                                   (now, row["range_id"]))
        return [json.loads(row["definition"]) for row in rows]

    def update_range(self, range_id: str, status: str, entry: dict[str, Any]) -> bool:
        """Record a reported range state; False when the range is unknown."""
        with self._lock, self._conn:
            cur = self._conn.execute(
                "UPDATE eventranges SET status=?, updated_at=?, n_updates=n_updates+1, last_update=? WHERE range_id=?",
                (status or "unknown", time.time(), _dumps(entry), range_id))
        return cur.rowcount == 1

    def ranges(self, pandaid: int) -> list[dict[str, Any]]:
        """Return every range of a job with its current status."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM eventranges WHERE pandaid=? ORDER BY seq", (pandaid,)).fetchall()
        out = []
        for row in rows:
            item = dict(row)
            item["definition"] = json.loads(item["definition"])
            item["last_update"] = json.loads(item["last_update"]) if item["last_update"] else None
            out.append(item)
        return out

    # -------------------------------------------------------- traces, sinks

    def add_trace(self, body: Any) -> int:
        """Store one trace report (a dict, or anything that came in)."""
        with self._lock, self._conn:
            cur = self._conn.execute("INSERT INTO traces (time, body) VALUES (?,?)", (time.time(), _dumps(body)))
        return int(cur.lastrowid or 0)

    def traces(self) -> list[dict[str, Any]]:
        """Return every stored trace body, oldest first."""
        with self._lock:
            rows = self._conn.execute("SELECT body FROM traces ORDER BY id").fetchall()
        return [json.loads(row["body"]) for row in rows]

    def add_sink(self, name: str, body: Any) -> int:
        """Store one document posted to a named sink."""
        with self._lock, self._conn:
            cur = self._conn.execute("INSERT INTO sinks (name, time, body) VALUES (?,?,?)",
                                     (name, time.time(), _dumps(body)))
        return int(cur.lastrowid or 0)

    def sink(self, name: str) -> list[dict[str, Any]]:
        """Return the documents of one sink as {id, time, body}, oldest first."""
        with self._lock:
            rows = self._conn.execute("SELECT id, time, body FROM sinks WHERE name=? ORDER BY id", (name,)).fetchall()
        return [{"id": row["id"], "time": row["time"], "body": json.loads(row["body"])} for row in rows]

    def counts(self) -> dict[str, int]:
        """Return the number of rows per table (for the status endpoint)."""
        with self._lock:
            return {table: int(self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
                    for table in ("jobs", "updates", "requests", "eventranges", "traces", "sinks")}
