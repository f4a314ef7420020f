"""The Pilot 2 style execute() wrapper around processes.run_command."""

import io
import sys
import types

import pytest

import pilot.util.container as container_module
from pilot.util.container import execute
from pilot.util.processes import CommandResult


@pytest.fixture
def fake_run(monkeypatch):
    calls = []
    outcome = {"result": CommandResult(0, "out\n", "", False)}

    def run_command(cmd, timeout=None, cwd=None, env=None, shell=False):
        calls.append({"cmd": cmd, "timeout": timeout, "cwd": cwd, "env": env, "shell": shell})
        return outcome["result"]

    monkeypatch.setattr("pilot.util.processes.run_command", run_command)
    return calls, outcome


def test_string_runs_in_shell_and_trailing_newline_is_dropped(fake_run):
    calls, _ = fake_run
    assert execute("echo out", timeout=5, workdir="/tmp", env={"A": "1"}) == (0, "out", "")
    assert calls == [{"cmd": "echo out", "timeout": 5, "cwd": "/tmp", "env": {"A": "1"}, "shell": True}]


def test_list_runs_without_shell_and_cwd_wins(fake_run):
    calls, outcome = fake_run
    outcome["result"] = CommandResult(3, "a\n\n", "err", False)
    assert execute(["ls", "-l"], cwd="/a", workdir="/b") == (3, "a\n", "err")
    assert calls[0]["shell"] is False and calls[0]["cwd"] == "/a"


def test_timeout_maps_to_command_timed_out(fake_run):
    _, outcome = fake_run
    outcome["result"] = CommandResult(-9, "", "partial", True)
    code, _, stderr = execute("sleep 100", timeout=1)
    assert code == 1367 and "partial" in stderr and "timed out" in stderr


def test_output_copied_to_given_files(fake_run):
    _, outcome = fake_run
    outcome["result"] = CommandResult(0, "hello\n", "warn", False)
    out, err = io.StringIO(), io.StringIO()
    execute("x", stdout=out, stderr=err, mute=True)
    assert out.getvalue() == "hello" and err.getvalue() == "warn"


def test_python_mode(fake_run):
    calls, _ = fake_run
    execute("-c pass", mode="python")
    assert calls[0]["cmd"] == [sys.executable, "-c", "pass"] and calls[0]["shell"] is False


def test_secrets_are_hidden_in_log(fake_run, caplog):
    caplog.set_level("INFO", logger="pilot.util.container")
    execute("S3_SECRET_KEY=abc123 tool --token=xyz", obscure="xyz")
    assert "abc123" not in caplog.text and "xyz" not in caplog.text and "tool" in caplog.text


def _container_plugin(monkeypatch, wrapper, use=True):
    module = types.ModuleType("pilot.user.fakecont.container")
    module.do_use_container = lambda **kw: use
    module.wrapper = wrapper
    module.create_middleware_container_command = lambda *a, **k: ""
    module.get_middleware_container_script = lambda *a, **k: ""
    monkeypatch.setitem(sys.modules, "pilot.user.fakecont", types.ModuleType("pilot.user.fakecont"))
    monkeypatch.setitem(sys.modules, "pilot.user.fakecont.container", module)
    monkeypatch.setenv("PILOT_USER", "fakecont")


def test_usecontainer_wraps_command(fake_run, monkeypatch):
    calls, _ = fake_run
    _container_plugin(monkeypatch, lambda exe, **kw: f"apptainer exec img {exe}")
    execute("run.sh", usecontainer=True)
    assert calls[0]["cmd"] == "apptainer exec img run.sh"


def test_usecontainer_declined_by_plugin(fake_run, monkeypatch):
    calls, _ = fake_run
    _container_plugin(monkeypatch, lambda exe, **kw: "never", use=False)
    execute("run.sh", usecontainer=True)
    assert calls[0]["cmd"] == "run.sh"


def test_usecontainer_failure_returns_minus_one(fake_run, monkeypatch):
    calls, _ = fake_run
    _container_plugin(monkeypatch, lambda exe, **kw: "")
    code, stdout, stderr = execute("run.sh", usecontainer=True)
    assert (code, stdout) == (-1, "") and "no command" in stderr and not calls


def test_returnproc_gives_process_handle(monkeypatch):
    started = {}

    class FakePopen:
        def __init__(self, cmd, **kwargs):
            started.update(kwargs, cmd=cmd)

    monkeypatch.setattr(container_module.subprocess, "Popen", FakePopen)
    proc = execute("sleep 1", returnproc=True, cwd="/tmp")
    assert isinstance(proc, FakePopen)
    assert started["cmd"] == "sleep 1" and started["shell"] is True and started["start_new_session"] is True
    assert started["cwd"] == "/tmp"
