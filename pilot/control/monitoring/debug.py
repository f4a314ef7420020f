"""Debug mode (server command ``debug`` or a debug command, compat 4.6): what the heartbeats carry in ``stdout``.

Refreshed just before each heartbeat of a job in debug mode (every ``debug_heartbeat`` s):

- after ``debug``: the tail of the newest payload log (payload stdout/stderr or ``log.*``);
- after a debug command (``tail``, ``ls``, ``ps``, ``du``, ``gdb`` + arguments): its output, run
  without a shell by :mod:`pilot.util.debugcommands` (path arguments confined to the job's work
  dir, ``ps`` limited to the payload's processes). ``gdb`` runs once: it writes a core file of a
  payload process and then the payload is stopped (the core file makes the job fail with 1355);
  without gdb on the node it only reports that.

``debugoff`` ends debug mode (handled with the other server commands in ``pilot.control.monitor``).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

from pilot.util.config import config
from pilot.util.debugcommands import (DebugCommand, core_path, gdb_target, is_debug_command, newest_payload_log,
                                      parse_debug_command, run_debug_command)
from pilot.util.filehandling import tail

from .base import WatchedJob, setting

logger = logging.getLogger(__name__)

#: characters of debug output kept (the update field is cut to 2048)
MAX_OUTPUT = 2048


class DebugOutput:
    """The ``stdout`` heartbeat field of one job in debug mode."""

    def __init__(self, watched: WatchedJob) -> None:
        self.watched = watched
        self.text = ""  # the server text of the current debug command
        self.command: Optional[DebugCommand] = None
        self.refusal = ""
        self.gdb_done = False

    @property
    def job(self) -> Any:
        return self.watched.job

    def refresh(self) -> Optional[str]:
        """Update ``job.debug_stdout``; returns a kill reason when the payload must be stopped (after gdb)."""
        job = self.job
        if not job.debug:
            return None
        self._parse(job.server_command if is_debug_command(job.server_command) else "")
        if self.refusal:
            job.debug_stdout = self.refusal
            return None
        if self.command is None:
            path = newest_payload_log(job.workdir, (config.Payload.payloadstdout, config.Payload.payloadstderr))
            job.debug_stdout = tail(path, MAX_OUTPUT) if path else "no payload log yet"
            return None
        return self._run(self.command)

    def _parse(self, text: str) -> None:
        if text == self.text:
            return
        self.text, self.command, self.refusal, self.gdb_done = text, None, "", False
        if not text:
            return
        rewrite = self.watched.user_function("common", "process_debug_command")
        try:
            if rewrite is not None:
                text = rewrite(text, self.job.jobid) or text
            self.command = parse_debug_command(text, self.job.workdir)
        except ValueError as exc:
            self.refusal = f"debug command refused: {exc}"
            logger.warning("job %s: %s", self.job.jobid, self.refusal)

    def _run(self, cmd: DebugCommand) -> Optional[str]:
        job = self.job
        timeout = setting("debug_command_timeout", 60.0)
        table = self.watched.tree()
        pids = self.watched.payload_pids(table)
        if cmd.verb == "gdb":
            if self.gdb_done:
                return None
            self.gdb_done = True
            target = gdb_target(cmd, pids, {pid: info.rss_pages for pid, info in table.items()})
            if target is None:
                job.debug_stdout = f"$ {cmd.text}\ngdb: process {cmd.pid} is not a payload process: no core dump"
                return None
            cmd = DebugCommand("gdb", [], cmd.text, pid=target)
        output = run_debug_command(cmd, job.workdir, pids, timeout=timeout)
        job.debug_stdout = f"$ {cmd.text}\n{output}"[-MAX_OUTPUT:]
        logger.info("job %s: debug command %r done (%d characters of output)", job.jobid, cmd.text, len(output))
        if cmd.verb == "gdb" and cmd.pid is not None and os.path.exists(core_path(job.workdir, cmd.pid)):
            return f"core dump of process {cmd.pid} taken on request of the server (gdb)"
        return None
