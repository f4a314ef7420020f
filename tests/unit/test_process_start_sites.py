"""Where the pilot may start a process: a walk over pilot/ with ``ast`` (issue 20 point 2).

Every tool command starts through the one command runner (:mod:`pilot.util.commandrunner`), every
payload through :class:`pilot.util.guardedprocess.GuardedProcess`. Any other use of ``subprocess``'s
starters, ``os.system``/``popen``/``fork``/``exec*``/``spawn*``, ``pty`` or asyncio's subprocess
functions fails this test unless it is in :data:`ALLOWED` with its reason; the same list, with the
same reasons, is in doc/source/architecture.rst ("Where processes start").
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, Iterator, Set, Tuple

REPO = Path(__file__).resolve().parents[2]
PILOT = REPO / "pilot"

_SUBPROCESS = {"Popen", "run", "call", "check_call", "check_output", "getoutput", "getstatusoutput"}
_OS = re.compile(r"^(system|popen|fork|forkpty|posix_spawnp?|exec[lv]p?e?|spawn[lv]p?e?)$")
_ASYNCIO = {"create_subprocess_exec", "create_subprocess_shell", "subprocess_exec", "subprocess_shell"}

#: file -> (the starters it may use, why it needs its own start)
ALLOWED: Dict[str, Tuple[Set[str], str]] = {
    "pilot/util/commandrunner.py": (
        {"subprocess.Popen"},
        "the one command runner: every tool command (copytools, containers, execute, proxy and setup "
        "checks, debug commands, prmon, benchmark workers) starts here"),
    "pilot/util/guardedprocess.py": (
        {"subprocess.Popen"},
        "the payload guard: it is handed a status pipe (pass_fds) instead of output pipes, its payload's "
        "output goes to files, and it is stopped through the guard, its cgroup and its PID namespace"),
    "pilot/util/payloadguard.py": (
        {"os.fork", "os.execv"},
        "the guard process itself (loaded with python -S, no subprocess module): forks the init of the "
        "payload's PID namespace and execs the payload after unsharing namespaces and masking credentials"),
    "pilot/devserver/tls.py": (
        {"subprocess.run"},
        "test-server tool: runs openssl to make the dev server's certificates; never part of a pilot run"),
    "pilot/devserver/control.py": (
        {"subprocess.Popen"},
        "test-server tool: starts the dev server and reads its ready line; never part of a pilot run"),
}


def _qualified(tree: ast.AST) -> Dict[str, str]:
    """Local names bound by imports -> what they are (``sp`` -> ``subprocess``, ``Popen`` -> ``subprocess.Popen``)."""
    names: Dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = alias.name if alias.asname else \
                    alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, names: Dict[str, str]) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    parts.append(names.get(node.id, node.id))
    return ".".join(reversed(parts))


def _forbidden(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    if module == "subprocess":
        return attr in _SUBPROCESS
    if module in ("os", "posix"):
        return bool(_OS.match(attr))
    if module in ("asyncio", "asyncio.subprocess") or module.startswith("asyncio."):
        return attr in _ASYNCIO
    if module == "pty":
        return attr in ("spawn", "fork")
    starters = ("Process", "Pool", "ProcessPoolExecutor")
    return module in ("multiprocessing", "concurrent.futures") and attr in starters


def _annotations(tree: ast.AST) -> Set[int]:
    """ids of the nodes inside type annotations (``Optional[subprocess.Popen]`` names a type, starts nothing)."""
    roots = []
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
        elif isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            roots.append(node.returns)
    return {id(inner) for root in roots for inner in ast.walk(root)}


def start_sites(root: Path = PILOT) -> Iterator[Tuple[str, int, str]]:
    """(file, line, starter) of every reference to a process starter under ``root`` (annotations aside)."""
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        names = _qualified(tree)
        skip = _annotations(tree)
        rel = path.relative_to(REPO).as_posix()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, (ast.Attribute, ast.Name)):
                if isinstance(node, ast.Name) and node.id not in names:
                    continue
                name = _dotted(node, names)
                if name and _forbidden(name):
                    yield rel, node.lineno, name
            elif isinstance(node, ast.ImportFrom) and node.module in ("subprocess", "os", "pty", "asyncio"):
                for alias in node.names:
                    if _forbidden(f"{node.module}.{alias.name}"):
                        yield rel, node.lineno, f"{node.module}.{alias.name}"


def test_processes_start_only_at_the_allowed_sites():
    offending = [f"{path}:{line}: {name}" for path, line, name in start_sites()
                 if name not in ALLOWED.get(path, (set(), ""))[0]]
    assert not offending, ("start processes through pilot.util.commandrunner (tools) or "
                           "pilot.util.guardedprocess (payloads):\n" + "\n".join(offending))


def test_every_allowed_site_is_still_used_and_has_a_reason():
    used: Dict[str, Set[str]] = {}
    for path, _, name in start_sites():
        used.setdefault(path, set()).add(name)
    for path, (starters, reason) in ALLOWED.items():
        assert len(reason) > 40, path
        assert used.get(path, set()) == starters, f"{path}: allowed {starters}, used {used.get(path)}"


def test_the_walk_finds_every_kind_of_start(tmp_path):
    sample = tmp_path / "pilot" / "sample.py"
    sample.parent.mkdir()
    sample.write_text("import os\nimport subprocess as sp\nfrom subprocess import check_output\n"
                      "import asyncio\nfrom os import execvpe\n"
                      "sp.run(['x'])\ncheck_output(['x'])\nos.system('x')\nos.fork()\nos.spawnlp(0, 'x')\n"
                      "asyncio.create_subprocess_exec('x')\nstarter = sp.Popen\nos.getpid()\nsp.PIPE\n"
                      "def f(p: sp.Popen) -> sp.Popen:\n    q: sp.Popen = p\n    return q\n")
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        found = sorted({name for _, _, name in start_sites(tmp_path / "pilot")})
    finally:
        REPO = saved
    assert found == ["asyncio.create_subprocess_exec", "os.execvpe", "os.fork", "os.spawnlp", "os.system",
                     "subprocess.Popen", "subprocess.check_output", "subprocess.run"]


def test_the_docs_list_the_same_sites():
    text = (REPO / "doc" / "source" / "architecture.rst").read_text()
    section = text.partition("Where processes start")[2]
    assert section, "doc/source/architecture.rst has no 'Where processes start' section"
    for path in ALLOWED:
        assert f"``{path}``" in section, path
