"""doc/source/concerns.rst stays true: every module, name and path it writes exists, and it names them all.

A dotted ``pilot.x.y`` literal must be a module of the tree, or a module and one name defined at its top
level (a function, a class, an assignment or an import); a literal with a slash is a path from the
repository root. Every module of the rooms where the concerns live (pilot/util, pilot/control,
pilot/api) must be named on the page: itself, a package it belongs to, or a name it defines.
"""

import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = os.path.join(ROOT, "doc", "source", "concerns.rst")
#: the rooms whose every module must be on the map
ROOMS = ("pilot/util", "pilot/control", "pilot/api")


def _literals(text):
    return re.findall(r"``([^`]+)``", text)


def _module_file(dotted):
    base = os.path.join(ROOT, *dotted.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _top_level_names(path):
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def problem(literal):
    """Why ``literal`` does not name something that exists ('' when it does, or is not a reference)."""
    if "<" in literal or " " in literal or literal.startswith("/"):
        return ""  # a pattern (pilot.copytool.<name>) or a system path
    if "/" in literal or literal.endswith((".py", ".cfg", ".rst")):
        return "" if os.path.exists(os.path.join(ROOT, literal)) else f"no file {literal}"
    if not literal.startswith("pilot."):
        return ""
    parts = literal.split(".")
    for cut in range(len(parts), 0, -1):
        path = _module_file(".".join(parts[:cut]))
        if path is None:
            continue
        rest = parts[cut:]
        if not rest:
            return ""
        if len(rest) == 1 and rest[0] in _top_level_names(path):
            return ""
        break
    return f"no module or name {literal}"


@pytest.fixture(scope="module")
def page():
    with open(PAGE, encoding="utf-8") as handle:
        return handle.read()


def test_every_reference_exists(page):
    literals = _literals(page)
    assert len([x for x in literals if x.startswith("pilot.")]) > 100  # the page was read
    problems = [p for p in (problem(x) for x in sorted(set(literals))) if p]
    assert not problems, problems


def test_the_checker_sees_what_is_missing():
    assert problem("pilot.util.https") == "" and problem("pilot.control.context.PilotContext") == ""
    assert problem("pilot/util/default.cfg") == "" and problem("pilot.copytool.<name>") == ""
    assert problem("pilot.util.nosuchmodule") == "no module or name pilot.util.nosuchmodule"
    assert problem("pilot.util.https.no_such_name") == "no module or name pilot.util.https.no_such_name"
    assert problem("pilot.py") == "" and problem("nothing.py") == "no file nothing.py"
    assert problem("pilot/util/nothing.cfg") == "no file pilot/util/nothing.cfg"


def test_every_module_of_the_rooms_is_on_the_map(page):
    named = {x for x in _literals(page) if x.startswith("pilot.")}
    missing = []
    for room in ROOMS:
        for directory, _dirs, files in os.walk(os.path.join(ROOT, room)):
            for name in files:
                if not name.endswith(".py") or name == "__init__.py" and directory.endswith(room):
                    continue
                rel = os.path.relpath(os.path.join(directory, name), ROOT)[:-3].replace(os.sep, ".")
                module = rel[:-len(".__init__")] if rel.endswith(".__init__") else rel
                if not any(n == module or n.startswith(module + ".") or module.startswith(n + ".") for n in named):
                    missing.append(module)
    assert not missing, f"modules the concern map does not name: {sorted(missing)}"


def test_the_page_is_in_the_table_of_contents():
    with open(os.path.join(ROOT, "doc", "source", "index.rst"), encoding="utf-8") as handle:
        assert re.search(r"^\s+concerns\s*$", handle.read(), re.M)
