"""The pilot package's import graph has no cycles but the few written down here, each with its reason.

The graph is read from the source with ``ast``: every ``import``/``from ... import`` of a pilot module,
at module level or inside a function (a deferred import is still a dependency), except those under
``if TYPE_CHECKING:`` (never run). A cycle is a strongly connected group of modules.
"""

import ast
import os
from typing import Dict, List, Set

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

#: the cycles that stay, and why; the test fails when one of them is gone too (then remove it here)
ALLOWED = {
    frozenset({"pilot.util.https", "pilot.util.httpbuild", "pilot.util.httpsetup"}):
        "one HTTP client split in three files; pilot.util.https serves the set-up names of Pilot 2 "
        "(https_setup, cacert, ...) and the builders, which make its HttpClient",
    frozenset({"pilot.api.services", "pilot.api.benchmark", "pilot.api.memorymonitor"}):
        "Pilot 2's import path 'from pilot.api.services import Benchmark, MemoryMonitoring' (a lazy "
        "module __getattr__), while both services derive from its Services base",
}


def _modules() -> Dict[str, str]:
    out = {}
    for directory, _dirs, files in os.walk(os.path.join(ROOT, "pilot")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out[module[:-len(".__init__")] if module.endswith(".__init__") else module] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> Set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` blocks."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
            if name == "TYPE_CHECKING":
                skip.update(id(inner) for part in node.body for inner in ast.walk(part))
    return skip


def import_graph() -> Dict[str, Set[str]]:
    """module -> the pilot modules it imports."""
    modules = _modules()

    def known(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        skip = _type_checking_nodes(tree)
        targets = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names if alias.name.startswith("pilot."))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                if base != "pilot" and not base.startswith("pilot."):
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else known(base))
        targets.discard(module)
        targets.discard("")
        graph[module] = targets
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[frozenset]:
    """The strongly connected groups of more than one module (Tarjan, iterative)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(frozenset(group))
    return found


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_the_graph_is_read(graph):
    """The reader sees the imports it must see (else the cycle check would pass on an empty graph)."""
    assert "pilot.control.payloads.selection" in graph["pilot.control.payload"]
    assert "pilot.control.payloads.eventservice" in graph["pilot.control.payloads.selection"]  # a deferred one
    assert "pilot.util.https" in graph["pilot.util.httpsetup"]
    assert "pilot.devserver.app" not in graph["pilot.devserver.routing"]  # under TYPE_CHECKING only


def test_no_import_cycle_but_the_allowed_ones(graph):
    found = set(cycles(graph))
    unexpected = [sorted(group) for group in found if group not in ALLOWED]
    assert not unexpected, f"import cycles: {unexpected}"
    gone = [sorted(group) for group in ALLOWED if group not in found]
    assert not gone, f"allowed cycles that no longer exist (remove them from ALLOWED): {gone}"


def test_no_cycle_in_control(graph):
    """The job flow's components (pilot/control) depend on each other one way only."""
    control = [sorted(group) for group in cycles(graph) if any(m.startswith("pilot.control") for m in group)]
    assert not control


def test_eventservice_executor_and_selection_are_not_a_cycle(graph):
    assert "pilot.control.payloads.selection" not in graph["pilot.control.payloads.eventservice"]


def test_the_cycle_finder_finds_a_cycle():
    toy = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(toy) == [frozenset({"a", "b", "c"})]
