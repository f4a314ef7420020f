"""Pilot 2 compatible ``execute(cmd, **kwargs)``: run a command, return (exit code, stdout, stderr).

New code should call ``pilot.util.processes.run_command`` directly; this wrapper exists for plug-ins
and copytools written against the Pilot 2 API. A string command runs through the shell (as in
Pilot 2), a list runs without one. Both modes go through the one command runner
(:mod:`pilot.util.commandrunner`): waiting (time-out, bounded output, tree kill) or, with
``returnproc``, started and handed back.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from typing import Any, List, Tuple, Union

from pilot.common.errorcodes import ErrorCodes
from pilot.util.commandrunner import start_process

logger = logging.getLogger(__name__)

_SECRET = re.compile(r"((?:S3_SECRET_KEY|S3_ACCESS_KEY|PASSWORD|TOKEN)=)\S+", re.IGNORECASE)


def execute(cmd: Union[str, List[str]], **kwargs: Any) -> Union[Tuple[int, str, str], subprocess.Popen, None]:
    """Run cmd and return (exit code, stdout, stderr); stdout loses one trailing newline.

    Keyword arguments (all optional): ``timeout`` (seconds; on expiry the exit code is 1367
    COMMANDTIMEDOUT), ``cwd`` (or the Pilot 2 name ``workdir``), ``env``, ``mute`` (do not log the
    command), ``obscure`` (text hidden in the log line), ``stdout``/``stderr`` (open files that also
    receive the output), ``mode='python'`` (run the words of cmd with the current Python),
    ``usecontainer``/``job`` (wrap the command with the experiment's container plug-in),
    ``returnproc`` (start the command and return the ``Popen`` handle instead of waiting).
    """
    cmd, diagnostics = _prepare(cmd, kwargs)
    if diagnostics:
        # Pilot 2 convention: -1 (or no process) when the container command could not be built
        return None if kwargs.get("returnproc") else (-1, "", diagnostics)
    cwd = kwargs.get("cwd") or kwargs.get("workdir") or None
    env = kwargs.get("env")
    if not kwargs.get("mute"):
        logger.info("executing command: %s", _loggable(cmd, kwargs.get("obscure", "")))
    if kwargs.get("returnproc"):
        return _start(cmd, cwd, env, kwargs)

    from pilot.util.processes import run_command  # imported here: processes depends on other util modules

    result = run_command(cmd, timeout=kwargs.get("timeout"), cwd=cwd, env=env, shell=isinstance(cmd, str))
    stdout = result.stdout or ""
    stderr = result.stderr or ""
    exit_code = result.exit_code
    if result.timed_out:
        exit_code = ErrorCodes.COMMANDTIMEDOUT
        stderr = f"{stderr}\ncommand timed out after {kwargs.get('timeout')} s".lstrip("\n")
    if stdout.endswith("\n"):
        stdout = stdout[:-1]
    _copy_to(kwargs.get("stdout"), stdout)
    _copy_to(kwargs.get("stderr"), stderr)
    return exit_code, stdout, stderr


def _prepare(cmd: Union[str, List[str]], kwargs: dict) -> Tuple[Union[str, List[str]], str]:
    """Apply mode='python' and container wrapping; return (command, error text)."""
    if kwargs.get("mode") == "python":
        words = cmd.split() if isinstance(cmd, str) else list(cmd)
        cmd = [sys.executable] + words
    if kwargs.get("usecontainer"):
        return _containerise(cmd, kwargs)
    return cmd, ""


def _containerise(cmd: Union[str, List[str]], kwargs: dict) -> Tuple[Union[str, List[str]], str]:
    """Wrap cmd with pilot.user.<PILOT_USER>.container.wrapper(); ('', diag) on failure."""
    from pilot.common.pluginfactory import load_user_module

    job = kwargs.get("job")
    text = cmd if isinstance(cmd, str) else " ".join(cmd)
    try:
        container = load_user_module(os.environ.get("PILOT_USER", "generic"), "container")
        use = getattr(job, "usecontainer", None) if job is not None else None
        if use is None:
            use = container.do_use_container(**kwargs)
        if not use:
            return cmd, ""
        wrapped = container.wrapper(text, **kwargs)
    except Exception as exc:  # plug-in code (PilotException included): report, do not crash the caller
        return "", f"container wrapper failed: {exc}"
    if not wrapped:
        return "", "container wrapper returned no command"
    return wrapped, ""


def _start(cmd: Union[str, List[str]], cwd: Any, env: Any, kwargs: dict) -> subprocess.Popen:
    """Start cmd in its own session and return the handle (caller waits, reads and kills)."""
    stdout = kwargs.get("stdout") or subprocess.PIPE
    stderr = kwargs.get("stderr") or subprocess.PIPE
    return start_process(cmd, shell=isinstance(cmd, str), cwd=cwd, env=env, stdout=stdout, stderr=stderr,
                         text=True, errors="replace")


def _copy_to(target: Any, text: str) -> None:
    """Write text to an open file passed as stdout=/stderr= (Pilot 2 allowed file handles there)."""
    if text and hasattr(target, "write"):
        target.write(text)
        if hasattr(target, "flush"):
            target.flush()


def _loggable(cmd: Union[str, List[str]], obscure: str) -> str:
    text = cmd if isinstance(cmd, str) else " ".join(str(word) for word in cmd)
    if obscure:
        text = text.replace(obscure, "********")
    return _SECRET.sub(r"\1********", text)
