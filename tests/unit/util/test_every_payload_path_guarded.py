"""Every payload path starts through GuardedProcess, and the ES launcher masks like the generic executor.

The payload executors (generic, event service, merge, the job's pre-, co- and postprocess) and the
event-service code start nothing through the command runner or ``execute``: whatever they start is a
payload under the guard. The stand-alone event-service launcher hides the pilot's credentials as the
generic executor does (a real guard, a real masked file).
"""

from __future__ import annotations

import ast
from pathlib import Path

from pilot.eventservice.esprocess.launcher import GuardedLauncher

REPO = Path(__file__).resolve().parents[3]
PAYLOAD_CODE = [REPO / "pilot" / "control" / "payload.py", REPO / "pilot" / "control" / "payloads",
                REPO / "pilot" / "eventservice"]
TOOL_STARTERS = {"run_command", "run_cancellable", "run_tool", "execute", "start_process", "CommandProcess",
                 "commandrunner", "container"}


def _files():
    for root in PAYLOAD_CODE:
        yield from ([root] if root.is_file() else sorted(root.rglob("*.py")))


def test_payload_code_starts_nothing_but_guarded_processes():
    found = []
    for path in _files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pilot.util"):
                names = {alias.name for alias in node.names} | {node.module.rsplit(".", 1)[-1]}
                if names & TOOL_STARTERS:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: from {node.module} import "
                                 f"{', '.join(sorted(names & TOOL_STARTERS))}")
    assert not found, "payload paths must start through GuardedProcess:\n" + "\n".join(found)
    guarded = [path for path in _files() if "GuardedProcess" in path.read_text() or "PayloadExecutor(" in
               path.read_text() or "GuardedLauncher(" in path.read_text()]
    assert {p.name for p in guarded} >= {"generic.py", "launcher.py", "utilities.py", "esprocess.py"}


def test_the_es_launcher_masks_the_pilots_credentials(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o755)
    proxy = secrets / "x509up_pilot"
    proxy.write_text("PILOT-PROXY-CONTENT")
    proxy.chmod(0o644)
    workdir = tmp_path / "es"
    workdir.mkdir(mode=0o755)
    env = {"PATH": "/usr/bin:/bin", "X509_USER_PROXY": str(proxy), "HOME": str(tmp_path)}
    launcher = GuardedLauncher(str(workdir), env=env, grace=2.0)
    launcher.start(f"cat {proxy} 2>/dev/null; echo X509=$X509_USER_PROXY; exit 4")
    status = launcher.wait()
    spec = launcher.guarded.spec
    assert str(proxy) in spec.masks and spec.credential_isolation == "auto" and spec.process_isolation == "auto"
    assert "X509_USER_PROXY" not in spec.env
    assert status["exit_code"] == 4
    out = (workdir / "ES_payload_output.txt").read_text()
    assert out == "X509=\n", out
