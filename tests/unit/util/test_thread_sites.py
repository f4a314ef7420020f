"""Every thread of the pilot is started by :mod:`pilot.util.runner` (issue 20 point 1).

The test reads every module under ``pilot/`` with :mod:`ast` and fails on a ``threading.Thread`` or
``threading.Timer`` construction (however imported or aliased), a class derived from either, or a raw
``_thread.start_new_thread``, outside the allow-list below. Each entry says why it may stay.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Dict, List, Set, Tuple

PILOT = Path(__file__).resolve().parents[3] / "pilot"
THREAD_CLASSES = {"Thread", "Timer"}

#: (path under pilot/, what) -> why it may construct or derive from a thread outside the runner
ALLOWED: Dict[Tuple[str, str], str] = {
    ("util/runner.py", "threading.Thread"):
        "the runner itself: the one place that starts a pilot thread",
    ("devserver/server.py", "threading.Thread"):
        "the development PanDA server, a separate program (not the pilot): its HTTP serving thread",
    ("eventservice/testpayload.py", "threading.Thread"):
        "a stand-alone test payload program run by the tests as the payload, not part of the pilot",
    ("eventservice/esprocess/esprocess.py", "class ESProcess(threading.Thread)"):
        "Pilot 2 API shape: ESProcess is a threading.Thread subclass its callers start, join and poll; its run() "
        "records any failure (failure, poll() -1) and the executor fails the job with it",
    ("eventservice/esprocess/esmessage.py", "class MessageThread(threading.Thread)"):
        "Pilot 2 API shape: MessageThread is a threading.Thread subclass (start, stop, join, is_alive); its run() "
        "records a broken channel in .error and the ES process notices",
    ("eventservice/workexecutor/plugins/baseexecutor.py", "class BaseExecutor(threading.Thread)"):
        "Pilot 2 plug-in contract: work-executor plug-ins derive from a threading.Thread BaseExecutor (the "
        "generic executor's run() turns any failure into its exit code)",
    ("eventservice/communicationmanager/communicationmanager.py", "class CommunicationManager(threading.Thread)"):
        "Pilot 2 API shape: CommunicationManager is a threading.Thread subclass (start, stop, join); its run() "
        "records a death in .error and releases every waiting client",
}


def _aliases(tree: ast.AST) -> Tuple[Set[str], Dict[str, str]]:
    """(names bound to the threading/_thread modules, local name -> threading class it is bound to)."""
    modules: Set[str] = set()
    classes: Dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("threading", "_thread"):
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module == "threading":
            for alias in node.names:
                if alias.name in THREAD_CLASSES:
                    classes[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute):  # Thread = threading.Thread
            value = node.value
            if isinstance(value.value, ast.Name) and value.value.id == "threading" and value.attr in THREAD_CLASSES:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        classes[target.id] = value.attr
    return modules, classes


def _thread_class(node: ast.AST, modules: Set[str], classes: Dict[str, str]) -> str:
    """'threading.Thread' / 'threading.Timer' when ``node`` names one of them, else ''."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
        if node.attr in THREAD_CLASSES:
            return f"threading.{node.attr}"
    if isinstance(node, ast.Name) and node.id in classes:
        return f"threading.{classes[node.id]}"
    return ""


def thread_sites(source: str) -> List[Tuple[int, str]]:
    """(line, what) of every thread construction, thread subclass and raw thread start in ``source``."""
    tree = ast.parse(source)
    modules, classes = _aliases(tree)
    found: List[Tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            what = _thread_class(node.func, modules, classes)
            func = node.func
            if not what and isinstance(func, ast.Attribute) and func.attr in ("start_new_thread", "_start_new_thread"):
                what = f"_thread.{func.attr}"
            if what:
                found.append((node.lineno, what))
        elif isinstance(node, ast.ClassDef):
            for base in node.bases:
                what = _thread_class(base, modules, classes)
                if what:
                    found.append((node.lineno, f"class {node.name}({what})"))
    return found


@functools.lru_cache(maxsize=1)
def all_sites() -> Dict[Tuple[str, str], List[int]]:
    sites: Dict[Tuple[str, str], List[int]] = {}
    for path in sorted(PILOT.rglob("*.py")):
        rel = path.relative_to(PILOT).as_posix()
        for line, what in thread_sites(path.read_text()):
            sites.setdefault((rel, what), []).append(line)
    return sites


def test_no_thread_is_started_outside_the_runner():
    sites = all_sites()
    stray = [f"pilot/{rel}:{lines[0]}: {what}" for (rel, what), lines in sorted(sites.items())
             if (rel, what) not in ALLOWED]
    assert not stray, ("start these through pilot.util.runner (or add them to ALLOWED with the reason):\n"
                       + "\n".join(stray))


def test_every_allowed_entry_is_still_needed_and_has_a_reason():
    sites = all_sites()
    assert all(reason.strip() for reason in ALLOWED.values())
    assert [key for key in ALLOWED if key not in sites] == []
    assert len(sites[("util/runner.py", "threading.Thread")]) == 1  # one construction, in Runner.start


def test_the_supervisor_starts_its_components_through_the_runner():
    assert not thread_sites((PILOT / "control" / "supervisor.py").read_text())


def test_the_walker_finds_every_spelling():
    source = """
import threading
import threading as th
import _thread
from threading import Thread, Timer as T
Alias = threading.Thread
threading.Thread(target=print)
th.Timer(1, print)
Thread()
T(1, print)
Alias()
_thread.start_new_thread(print, ())
class Mine(th.Thread):
    pass
threading.Event()
"""
    found = [what for _, what in thread_sites(source)]
    assert found.count("threading.Thread") == 3 and found.count("threading.Timer") == 2
    assert "_thread.start_new_thread" in found and "class Mine(threading.Thread)" in found
    assert len(found) == 7
