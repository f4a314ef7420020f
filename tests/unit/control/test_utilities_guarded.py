"""The job's pre- and postprocess run under a real payload guard with the payload's isolation (issue 20 point 2).

The job defines these commands: like the payload and the coprocess they must not see the pilot's
credentials or state, whatever path starts them.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.control.payloads import utilities
from pilot.info.jobdata import JobData


def _job(tmp_path) -> JobData:
    job = JobData.from_definition({"PandaID": "7101", "taskID": "1", "transformation": "/bin/true", "jobPars": "",
                                   "prodSourceLabel": "managed"})
    job.workdir = str(tmp_path / "PanDA_Pilot-7101")
    (tmp_path / "PanDA_Pilot-7101").mkdir(mode=0o755)
    return job


def _user(lines: dict):
    def get_utility_commands(order=None, job=None):
        return {"label": lines[order][0]} if order in lines else {}

    def get_utility_command_setup(label, job=None):
        return next(line for name, line in lines.values() if name == label)

    common = SimpleNamespace(get_utility_commands=get_utility_commands,
                             get_utility_command_setup=get_utility_command_setup)
    return SimpleNamespace(module=lambda name: common)


@pytest.fixture
def pilot_secrets(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o755)
    proxy = secrets / "x509up_pilot"
    proxy.write_text("PILOT-PROXY-CONTENT")
    proxy.chmod(0o644)
    state = tmp_path / "pilot_outbox"
    state.mkdir(mode=0o755)
    (state / "7101.final.json").write_text("PILOT-STATE-CONTENT")
    env = {"PATH": "/usr/bin:/bin", "X509_USER_PROXY": str(proxy), "HOME": str(tmp_path)}
    return env, proxy, state


@pytest.fixture
def executors(monkeypatch):
    made = []
    original = utilities._executor

    def keep(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(utilities, "_executor", keep)
    return made


def test_the_preprocess_runs_under_the_guard_with_the_payloads_masks(tmp_path, pilot_secrets, executors):
    env, proxy, state = pilot_secrets
    line = (f"echo pid=$$; cat {proxy} {state}/7101.final.json 2>/dev/null; echo X509=$X509_USER_PROXY; "
            "echo last words >&2; exit 3")
    job = _job(tmp_path)
    ok = utilities.run_blocking(_user({utilities.UTILITY_BEFORE_PAYLOAD: ("preprocess", line)}),
                                utilities.UTILITY_BEFORE_PAYLOAD, job, env=env, state_masks=[str(state)])
    assert not ok and ErrorCodes.PREPROCESSFAILURE in job.errors.codes
    assert "exit code 3: last words" in job.errors.entries()[0][1]
    executor = executors[0]
    spec = executor.guarded.spec
    assert str(proxy) in spec.masks and str(state) in spec.masks  # the same masks as the payload gets
    assert spec.credential_isolation == "auto" and spec.process_isolation == "auto"
    assert "X509_USER_PROXY" not in spec.env
    out = (tmp_path / "PanDA_Pilot-7101" / "preprocess.stdout").read_text()
    assert "X509=\n" in out
    assert "PILOT-PROXY-CONTENT" not in out and "PILOT-STATE-CONTENT" not in out, out


def test_the_postprocess_succeeds_and_hpo_codes_are_no_failure(tmp_path, pilot_secrets, executors):
    env, _, _ = pilot_secrets
    job = _job(tmp_path)
    order = utilities.UTILITY_AFTER_PAYLOAD_FINISHED2
    assert utilities.run_blocking(_user({order: ("postprocess", "echo done")}), order, job, env=env)
    assert utilities.run_blocking(_user({order: ("postprocess", "exit 161")}), order, job, env=env)
    assert not job.errors.codes and len(executors) == 2
    assert all(e.guarded is not None and e.guarded.proc.returncode is not None for e in executors)
    assert (tmp_path / "PanDA_Pilot-7101" / "postprocess.stdout").read_text() == "done\n"


def test_a_postprocess_that_overruns_is_stopped(tmp_path, pilot_secrets, monkeypatch):
    env, _, _ = pilot_secrets
    monkeypatch.setattr(utilities, "UTILITY_TIMEOUT", 1.0)
    job = _job(tmp_path)
    order = utilities.UTILITY_AFTER_PAYLOAD_FINISHED2
    assert not utilities.run_blocking(_user({order: ("postprocess", "sleep 60")}), order, job, env=env)
    assert ErrorCodes.POSTPROCESSFAILURE in job.errors.codes and "timed out" in job.errors.entries()[0][1]


def test_the_jobs_abort_stops_the_preprocess(tmp_path, pilot_secrets):
    env, _, _ = pilot_secrets
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    job = _job(tmp_path)
    order = utilities.UTILITY_BEFORE_PAYLOAD
    start = time.monotonic()
    assert not utilities.run_blocking(_user({order: ("preprocess", "sleep 60")}), order, job, env=env,
                                      stop_event=stop)
    assert time.monotonic() - start < 45
    assert ErrorCodes.PREPROCESSFAILURE in job.errors.codes and "aborted" in job.errors.entries()[0][1]
