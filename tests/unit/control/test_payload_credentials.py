"""The executor's one decision about the pilot's credentials: what the payload's environment keeps and what
the guard masks agree; ``[Payload] credential_isolation`` and how the guard's record is judged."""

from __future__ import annotations

import copy
import logging
from types import SimpleNamespace

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.control.payloads import generic
from pilot.control.payloads.generic import PayloadExecutor, credential_isolation_mode
from pilot.info.jobdata import JobData
from pilot.util.config import config
from pilot.util.proxy import write_payload_proxy


@pytest.fixture
def isolation(monkeypatch):
    """Set ``[Payload] credential_isolation`` for one test (the overrides are restored afterwards)."""
    monkeypatch.setattr(config, "_overrides", copy.deepcopy(config._overrides))

    def set_mode(value):
        config.set("Payload", "credential_isolation", value)

    return set_mode


@pytest.fixture
def pilot_env(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    proxy = secrets / "x509up_pilot"
    proxy.write_text("PILOT-PROXY")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "token").write_text("PILOT-TOKEN")
    env = {"PATH": "/usr/bin:/bin", "X509_USER_PROXY": str(proxy), "PANDA_AUTH_DIR": str(tokens),
           "PANDA_AUTH_TOKEN": "token"}
    return env, proxy, tokens


def _job(tmp_path, label: str = "managed", remote_io: bool = False) -> JobData:
    job = JobData.from_definition({"PandaID": "7001", "taskID": "1", "transformation": "/bin/true", "jobPars": "",
                                   "prodSourceLabel": label, "inFiles": "in.root", "GUID": "g1", "fsize": "1",
                                   "checksum": "ad:00000001", "scopeIn": "dev", "realDatasetsIn": "dev.ds",
                                   "ddmEndPointIn": "LOCAL"})
    job.workdir = str(tmp_path / "PanDA_Pilot-7001")
    (tmp_path / "PanDA_Pilot-7001").mkdir()
    if remote_io:
        for spec in job.indata:
            spec.status = "remote_io"
    return job


def _executor(job, env, decide=None) -> PayloadExecutor:
    common = SimpleNamespace() if decide is None else SimpleNamespace(payload_needs_pilot_proxy=decide)
    return PayloadExecutor(job, SimpleNamespace(module=lambda name: common), env=env)


def _plan(executor):
    env = executor.payload_environment()
    return env, executor.credential_masks(env)


def test_production_job_reading_remotely_keeps_the_pilot_proxy_visible(tmp_path, pilot_env):
    env, proxy, tokens = pilot_env
    payload_env, masks = _plan(_executor(_job(tmp_path, remote_io=True), env))
    assert payload_env["X509_USER_PROXY"] == str(proxy)
    assert str(proxy) not in masks and str(tokens) in masks


def test_local_production_job_gets_nothing(tmp_path, pilot_env):
    env, proxy, tokens = pilot_env
    payload_env, masks = _plan(_executor(_job(tmp_path), env))
    assert "X509_USER_PROXY" not in payload_env and "PANDA_AUTH_DIR" not in payload_env
    assert str(proxy) in masks and str(tokens) in masks


def test_analysis_job_sees_its_own_proxy_only(tmp_path, pilot_env):
    env, proxy, _tokens = pilot_env
    job = _job(tmp_path, label="user", remote_io=True)
    user_proxy = write_payload_proxy(job.workdir, "USER-PROXY")
    payload_env, masks = _plan(_executor(job, env))
    assert payload_env["X509_USER_PROXY"] == user_proxy
    assert user_proxy not in masks and str(proxy) in masks


def test_the_experiment_decides_with_payload_needs_pilot_proxy(tmp_path, pilot_env):
    env, proxy, _tokens = pilot_env
    payload_env, masks = _plan(_executor(_job(tmp_path), env, decide=lambda job: True))
    assert payload_env["X509_USER_PROXY"] == str(proxy) and str(proxy) not in masks
    (tmp_path / "other").mkdir()
    payload_env, masks = _plan(_executor(_job(tmp_path / "other", remote_io=True), env, decide=lambda job: False))
    assert "X509_USER_PROXY" not in payload_env and str(proxy) in masks


def test_off_masks_nothing(tmp_path, pilot_env, isolation):
    env, _proxy, _tokens = pilot_env
    isolation("off")
    assert _plan(_executor(_job(tmp_path), env))[1] == []


@pytest.mark.parametrize("value,mode", [("auto", "auto"), ("required", "required"), ("REQUIRED ", "required"),
                                        ("off", "off"), (False, "off"), ("", "auto"), ("bogus", "auto")])
def test_isolation_mode_values(isolation, value, mode):
    isolation(value)
    assert credential_isolation_mode() == mode


def test_the_shipped_default_is_auto():
    assert config.Payload.get("credential_isolation") == "auto"
    assert credential_isolation_mode() == "auto"


def test_the_guard_gets_the_mode_and_the_masks(tmp_path, pilot_env, isolation, monkeypatch):
    env, proxy, tokens = pilot_env
    isolation("required")
    seen = {}

    class FakePopen:
        pid = 99999999

        def __init__(self, cmd, **kwargs):
            seen["cmd"], seen["env"] = cmd, kwargs["env"]

    from pilot.util import guardedprocess

    monkeypatch.setattr(guardedprocess.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(guardedprocess, "TreeTracker", lambda pid: None)
    monkeypatch.setattr(guardedprocess.payloadns, "make_job_cgroup", lambda name: "")
    _executor(_job(tmp_path), env).start("true", record_pid=False)
    cmd = seen["cmd"]
    assert cmd[cmd.index("--isolation") + 1] == "required"
    assert cmd[cmd.index("--pidns") + 1] == "auto"  # the shipped [Payload] process_isolation
    assert cmd[cmd.index("--pilot-pid") + 1] == str(guardedprocess.os.getpid())
    masks = [cmd[i + 1] for i, arg in enumerate(cmd[:cmd.index("--")]) if arg == "--mask"]
    assert str(proxy) in masks and str(tokens) in masks
    assert "X509_USER_PROXY" not in seen["env"]


def _judged(tmp_path, record):
    job = _job(tmp_path)
    _executor(job, {})._judge_isolation(record)
    return job


def test_required_failure_fails_the_job_with_setupfailure(tmp_path, caplog):
    record = {"mode": "required", "masked": False, "paths": [], "error": "unshare(): Operation not permitted"}
    job = _judged(tmp_path, record)
    assert job.errors.codes == [ErrorCodes.SETUPFAILURE]
    assert "Operation not permitted" in str(list(job.errors))


def test_auto_failure_warns_once_and_does_not_fail(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=generic.__name__)
    record = {"mode": "auto", "masked": False, "paths": [], "error": "unshare(): Operation not permitted"}
    job = _judged(tmp_path, record)
    assert not job.errors
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "can read the pilot's credentials" in warnings[0].getMessage()
    assert "7001" in warnings[0].getMessage()


@pytest.mark.parametrize("record", [{"mode": "auto", "masked": True, "paths": ["/x"], "error": ""},
                                    {"mode": "off", "masked": False, "paths": [], "error": ""},
                                    {"mode": "required", "masked": False, "paths": [], "error": ""},
                                    None])
def test_other_records_are_no_error(tmp_path, caplog, record):
    caplog.set_level(logging.INFO, logger=generic.__name__)
    assert not _judged(tmp_path, record).errors
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
