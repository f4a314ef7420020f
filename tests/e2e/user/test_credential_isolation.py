"""Whole pilot runs without a container: the payload cannot read the pilot's proxy or token files.

The payload runs as the pilot's own uid; the payload guard hides the files in a private mount namespace
(``[Payload] credential_isolation``). With ``required`` and a kernel that refuses the namespace (root
without CAP_SYS_ADMIN, made with ``setpriv``), the job fails with 1110 and its payload never runs.
"""

from __future__ import annotations

import shutil

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job


@pytest.fixture
def pilot_credentials(tmp_path):
    """The pilot's 'proxy' and token files (outside every work dir) and the variables naming them."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    proxy = secrets / "x509up_pilot"
    proxy.write_text("-----BEGIN CERTIFICATE-----\nPILOTSECRET\n-----END CERTIFICATE-----\n")
    proxy.chmod(0o600)
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "panda_token").write_text("PILOTTOKENSECRET\n")
    env = {"X509_USER_PROXY": str(proxy), "PANDA_AUTH_DIR": str(tokens), "PANDA_AUTH_TOKEN": "panda_token"}
    return proxy, tokens, env


def _snooping_job(devserver, proxy, tokens) -> dict:
    job = sample_job(devserver.storage_dir)
    out = job["outFiles"].split(",")[0]
    job["jobPars"] = (f"-c 'touch ran.txt; cat dev.input.*txt | wc -c > {out}; cat {proxy} > seen_proxy.txt 2>&1;"
                      f" cat {tokens}/panda_token > seen_token.txt 2>&1; ls -A {tokens} > seen_dir.txt 2>&1;"
                      f" echo var=${{X509_USER_PROXY:-none}}'")
    return job


def test_payload_without_container_reads_nothing_of_the_pilots_credentials(devserver, start_pilot,
                                                                           pilot_credentials):
    proxy, tokens, env = pilot_credentials
    pandaid = devserver.submit(_snooping_job(devserver, proxy, tokens))
    run = start_pilot(env=env)
    run.wait(120)
    record = devserver.wait_final(pandaid, timeout=60)
    final = record.get("final_update") or {}
    assert record["state"] == "finished", (final.get("pilotErrorDiag"), run.log_text()[-3000:])
    workdir = run.main_dir() / f"PanDA_Pilot-{pandaid}"
    assert "var=none" in (workdir / "payload.stdout").read_text()
    assert (workdir / "seen_proxy.txt").read_text() == ""  # the proxy reads as an empty file
    assert "PILOTTOKENSECRET" not in (workdir / "seen_token.txt").read_text()
    assert (workdir / "seen_dir.txt").read_text() == ""  # the token directory is empty
    assert "pilot credentials masked" in run.log_text()
    # the pilot's files are intact after the job
    assert "PILOTSECRET" in proxy.read_text() and "PILOTTOKENSECRET" in (tokens / "panda_token").read_text()


@pytest.fixture
def pilot_without_sys_admin(tmp_path, monkeypatch):
    """Start the pilot as root without CAP_SYS_ADMIN: mount namespaces are refused."""
    from tests.e2e.conftest import pilot_python

    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop CAP_SYS_ADMIN"
    wrapper = tmp_path / "python-no-sys-admin"
    wrapper.write_text(f'#!/bin/sh\nexec {setpriv} --bounding-set -sys_admin {pilot_python()} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PILOT_TEST_PYTHON", str(wrapper))  # the pilot's interpreter in the fixtures


def test_required_isolation_that_cannot_be_had_fails_the_job_before_the_payload(devserver, start_pilot,
                                                                                pilot_credentials,
                                                                                pilot_without_sys_admin):
    proxy, tokens, env = pilot_credentials
    pandaid = devserver.submit(_snooping_job(devserver, proxy, tokens))
    run = start_pilot(env=env, config_text="\n[Payload]\ncredential_isolation: required\n")
    run.wait(120)
    record = devserver.wait_final(pandaid, timeout=60)
    final = record.get("final_update") or {}
    assert record["state"] == "failed", run.log_text()[-3000:]
    assert int(final["pilotErrorCode"]) == ErrorCodes.SETUPFAILURE, final.get("pilotErrorDiag")
    assert "credential isolation required" in final.get("pilotErrorDiag", "")
    assert not (run.main_dir() / f"PanDA_Pilot-{pandaid}" / "ran.txt").exists()  # the payload never ran
