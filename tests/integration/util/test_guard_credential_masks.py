"""The real payload guard, no container: the payload's shell cannot read the pilot's proxy or token files.

Root (as here and in CI) gets a private mount namespace; a non-root pilot (run here as ``nobody``) a user
namespace that maps only its own ids, so the payload cannot undo the masks either. A kernel that refuses
(root without CAP_SYS_ADMIN, made with ``setpriv``) shows what ``auto`` and ``required`` do.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.control.payloads import generic
from pilot.control.payloads.generic import PayloadExecutor
from pilot.info.jobdata import JobData
from pilot.util.config import config

REPO = Path(__file__).resolve().parents[3]
#: about half a CPU second of bash arithmetic, so the guard has CPU time to report
BURN = "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done"
SNOOP = ("cat {proxy} > seen_proxy.txt 2>&1; cat {bearer} > seen_bearer.txt 2>&1;"
         " ls -A {tokens} > seen_dir.txt 2>&1; cat {tokens}/panda_token > seen_token.txt 2>&1;"
         " echo overwritten > {proxy} 2>/dev/null; umount {proxy} 2> umount.txt; echo umount=$? >> umount.txt;"
         " {burn}; exit 7")


def _write_secret(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def make_credentials(base: Path) -> dict:
    """A pilot proxy, a bearer token file and a token directory, with the variables that name them."""
    secrets = base / "pilot-secrets"
    secrets.mkdir()
    tokens = base / "pilot-tokens"
    tokens.mkdir()
    files = {"proxy": _write_secret(secrets / "x509up_pilot", "PILOTSECRET-PROXY\n"),
             "bearer": _write_secret(secrets / "bearer_token", "PILOTSECRET-BEARER\n"),
             "tokens": tokens}
    _write_secret(tokens / "panda_token", "PILOTSECRET-TOKEN\n")
    env = {"X509_USER_PROXY": str(files["proxy"]), "BEARER_TOKEN_FILE": str(files["bearer"]),
           "PANDA_AUTH_DIR": str(tokens), "PANDA_AUTH_TOKEN": "panda_token"}
    return {"env": env, **files}


def snoop_line(creds: dict) -> str:
    return SNOOP.format(proxy=creds["proxy"], bearer=creds["bearer"], tokens=creds["tokens"], burn=BURN)


def assert_payload_saw_nothing(work: Path) -> None:
    for name in ("seen_proxy.txt", "seen_bearer.txt", "seen_dir.txt", "seen_token.txt"):
        assert "PILOTSECRET" not in (work / name).read_text(), name
    assert (work / "seen_proxy.txt").read_text() == ""  # the file reads as empty, not as an error
    assert (work / "seen_dir.txt").read_text() == ""    # the directory is empty


def assert_pilot_still_reads(creds: dict) -> None:
    assert creds["proxy"].read_text() == "PILOTSECRET-PROXY\n"
    assert creds["bearer"].read_text() == "PILOTSECRET-BEARER\n"
    assert (creds["tokens"] / "panda_token").read_text() == "PILOTSECRET-TOKEN\n"
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(creds["proxy"]) not in mounts and str(creds["tokens"]) not in mounts  # nothing leaked to the host


@pytest.fixture
def isolation(monkeypatch):
    """Set ``[Payload] credential_isolation`` for one test (the overrides are restored afterwards)."""
    monkeypatch.setattr(config, "_overrides", copy.deepcopy(config._overrides))
    return lambda value: config.set("Payload", "credential_isolation", value)


def _job(tmp_path: Path) -> JobData:
    job = JobData.from_definition({"PandaID": "9101", "taskID": "1", "transformation": "/bin/bash", "jobPars": "",
                                   "prodSourceLabel": "managed"})
    job.workdir = str(tmp_path / "PanDA_Pilot-9101")
    os.makedirs(job.workdir)
    return job


def _run(job: JobData, env: dict, line: str) -> dict:
    executor = PayloadExecutor(job, SimpleNamespace(module=lambda name: SimpleNamespace()), env=env, grace=2.0)
    executor.start(line)
    return executor.wait()


def test_root_payload_reads_nothing_and_the_pilot_keeps_its_files(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=generic.__name__)
    creds = make_credentials(tmp_path)
    job = _job(tmp_path)
    status = _run(job, dict(os.environ, **creds["env"]), snoop_line(creds))
    work = Path(job.workdir)
    assert status["exit_code"] == 7 and status["signal"] is None
    assert status["cpu"] >= 0.1, status
    record = status["credentials"]
    assert record["masked"] is True and record["mode"] == "auto"
    assert {str(creds["proxy"]), str(creds["bearer"]), str(creds["tokens"])} <= set(record["paths"])
    assert json.loads((work / "payload_guard.json").read_text())["credentials"] == record
    assert_payload_saw_nothing(work)
    assert not job.errors
    assert_pilot_still_reads(creds)  # also: the payload's write went nowhere
    assert any("pilot credentials masked" in r.getMessage() and "9101" in r.getMessage() for r in caplog.records)


def _python_for_nobody() -> str:
    """A Python 3 that the unprivileged user can execute (the venv's may live under /root)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        try:
            probe = subprocess.run([candidate, "-S", "-c", "pass"], user=65534, group=65534, extra_groups=[],
                                   capture_output=True, timeout=30)
        except OSError:  # not executable for nobody
            continue
        if probe.returncode == 0:
            return candidate
    raise AssertionError("no Python the user nobody may run: install python3 (/usr/bin/python3)")


@pytest.fixture
def shared_dir():
    """A directory the user nobody can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="guard-masks-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_non_root_payload_in_its_own_user_namespace(shared_dir):
    assert os.geteuid() == 0, "this test switches to the user nobody: run it as root (as CI does)"
    creds = make_credentials(shared_dir)
    work = shared_dir / "work"
    work.mkdir()
    for path in (creds["proxy"], creds["bearer"], creds["tokens"], creds["tokens"] / "panda_token", work,
                 creds["proxy"].parent):
        os.chown(path, 65534, 65534)  # the secrets belong to the (unprivileged) pilot user itself
    status_file = work / "guard.json"
    bootstrap = (f"import sys; sys.path.insert(0, {str(REPO)!r}); "
                 "from pilot.util.payloadguard import main; sys.exit(main())")
    masks = [arg for key in ("proxy", "bearer", "tokens") for arg in ("--mask", str(creds[key]))]
    cmd = [_python_for_nobody(), "-S", "-c", bootstrap, "--status", str(status_file), "--cwd", str(work),
           "--stdout", str(work / "out.txt"), "--isolation", "required", *masks,
           "--", "id -u > uid.txt; " + snoop_line(creds)]
    result = subprocess.run(cmd, user=65534, group=65534, extra_groups=[], timeout=120,
                            env={"PATH": "/usr/bin:/bin"})
    status = json.loads(status_file.read_text())
    assert result.returncode == 7 and status["exit_code"] == 7, status
    assert status["credentials"]["masked"] is True, status["credentials"]
    assert status["cpu"] >= 0.1
    assert (work / "uid.txt").read_text().strip() == "65534"  # the payload keeps its own uid
    assert_payload_saw_nothing(work)
    assert "umount=0" not in (work / "umount.txt").read_text()  # it cannot take the mask away
    assert_pilot_still_reads(creds)


@pytest.fixture
def no_sys_admin(tmp_path, monkeypatch):
    """Run the guard as root without CAP_SYS_ADMIN (like a container that forbids mounts): unshare fails."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop CAP_SYS_ADMIN"
    wrapper = tmp_path / "python-no-sys-admin"
    wrapper.write_text(f'#!/bin/sh\nexec {setpriv} --bounding-set -sys_admin {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(wrapper))


def test_required_mode_refused_by_the_kernel_fails_the_job(tmp_path, no_sys_admin, isolation):
    isolation("required")
    creds = make_credentials(tmp_path)
    job = _job(tmp_path)
    status = _run(job, dict(os.environ, **creds["env"]), "touch ran.txt; " + snoop_line(creds))
    assert not (Path(job.workdir) / "ran.txt").exists()  # the payload never started
    assert status["exit_code"] == 126 and "Operation not permitted" in status["credentials"]["error"]
    assert job.errors.codes == [ErrorCodes.SETUPFAILURE]
    assert_pilot_still_reads(creds)


def test_auto_mode_refused_by_the_kernel_runs_the_payload_and_warns_once(tmp_path, no_sys_admin, isolation, caplog):
    isolation("auto")
    caplog.set_level(logging.INFO, logger=generic.__name__)
    creds = make_credentials(tmp_path)
    job = _job(tmp_path)
    status = _run(job, dict(os.environ, **creds["env"]), snoop_line(creds))
    assert status["exit_code"] == 7 and status["cpu"] >= 0.1
    assert status["credentials"]["masked"] is False
    assert not job.errors
    # one warning about the credentials (the others say the payload kept the pilot's uid and PID namespace)
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and "credentials" in r.getMessage()]
    assert len(warnings) == 1 and "can read the pilot's credentials" in warnings[0], warnings
    # the honest fallback: without masks the same uid reads the file
    assert "PILOTSECRET-PROXY" in (Path(job.workdir) / "seen_proxy.txt").read_text()
