"""Payload isolation: a payload in bubblewrap cannot see the pilot's proxy or token; an analysis job gets its own."""

from __future__ import annotations

import functools
import http.server
import os
import stat
import threading

import pytest
from fakesite import FakeCommunicator, make_job, run_job_payload

from pilot.util.proxy import PAYLOAD_PROXY_NAME

SNOOP = ("-c 'echo proxyvar=${X509_USER_PROXY:-none} tokenvar=${BEARER_TOKEN_FILE:-none};"
         " cat {proxy} > seen_proxy.txt 2>&1; cat {token} > seen_token.txt 2>&1;"
         " ls /proc | grep -c \"^[0-9]\" > nprocs.txt; echo container=${{PILOT_CONTAINER:-no}}'")


@pytest.fixture
def pilot_credentials(tmp_path, monkeypatch):
    """A pilot proxy and token outside the job dir, announced in the pilot's environment."""
    secrets = tmp_path / "pilot-secrets"
    secrets.mkdir()
    proxy = secrets / "x509up_pilot"
    proxy.write_text("-----BEGIN CERTIFICATE-----\nPILOTSECRET\n-----END CERTIFICATE-----\n")
    proxy.chmod(0o600)
    token = secrets / "bearer_token"
    token.write_text("PILOTTOKENSECRET")
    monkeypatch.setenv("X509_USER_PROXY", str(proxy))
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(token))
    return proxy, token


def _snoop_job(tmp_path, proxy, token, **fields):
    pars = SNOOP.replace("{proxy}", str(proxy)).replace("{token}", str(token)).replace("{{", "{").replace("}}", "}")
    return make_job(tmp_path / "job", transformation="/bin/bash", jobPars=pars, swRelease="NULL",
                    homepackage="NULL", cmtConfig="NULL", **fields)


def test_generic_payload_in_bwrap_cannot_read_pilot_credentials(tmp_path, queue, bwrap, pilot_credentials):
    proxy, token = pilot_credentials
    queue(container_type="bwrap:pilot")
    job = _snoop_job(tmp_path, proxy, token)
    run_job_payload(job, "generic")
    work = tmp_path / "job"
    assert not job.errors, job.errors.entries if hasattr(job.errors, "entries") else job.errors
    assert job.exitcode == 0
    stdout = (work / "payload.stdout").read_text()
    assert "proxyvar=none tokenvar=none" in stdout
    assert "container=1" in stdout
    assert "PILOTSECRET" not in (work / "seen_proxy.txt").read_text()
    assert "PILOTTOKENSECRET" not in (work / "seen_token.txt").read_text()
    # its own PID namespace: only the processes of the payload itself
    assert int((work / "nprocs.txt").read_text()) < 10
    # the pilot's files are untouched
    assert "PILOTSECRET" in proxy.read_text()


def test_without_container_the_environment_is_still_clean(tmp_path, queue, pilot_credentials):
    proxy, token = pilot_credentials
    job = _snoop_job(tmp_path, proxy, token)
    run_job_payload(job, "generic")
    assert not job.errors
    stdout = (tmp_path / "job" / "payload.stdout").read_text()
    assert "proxyvar=none tokenvar=none" in stdout and "container=no" in stdout


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def trf_server(tmp_path, monkeypatch):
    """A local web server for user transformations, allowed as a transformation base URL."""
    root = tmp_path / "www"
    (root / "trf" / "user").mkdir(parents=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/trf"
    monkeypatch.setenv("PILOT_ALLOWED_TRF_URLS", base)
    yield root / "trf" / "user", base + "/user"
    server.shutdown()
    server.server_close()


USER_TRF = """#!/bin/bash
# user analysis transformation served by the test web server
echo "runGen args: $*"
echo "user proxy: ${X509_USER_PROXY:-none}"
cat "$X509_USER_PROXY" > seen_user_proxy.txt
cat "$1" > seen_pilot_proxy.txt 2>&1
echo "analysis output" > user.out.txt
"""


@pytest.mark.parametrize("container", ["bwrap:pilot", ""])
def test_analysis_job_gets_the_users_proxy_not_the_pilots(tmp_path, queue, bwrap, pilot_credentials, trf_server,
                                                          container):
    proxy, _token = pilot_credentials
    queue(container_type=container) if container else queue()
    directory, base = trf_server
    (directory / "runGen-00-01").write_text(USER_TRF)
    job = make_job(tmp_path / "job", transformation=f"{base}/runGen-00-01", jobPars=f"{proxy} --extra",
                   swRelease="NULL", homepackage="NULL", cmtConfig="NULL", prodSourceLabel="user")
    communicator = FakeCommunicator(proxy_text="USER-PROXY-TEXT\n")
    run_job_payload(job, "atlas", communicator=communicator)
    work = tmp_path / "job"
    assert not job.errors, list(job.errors)
    assert communicator.roles == ["atlas"]
    user_proxy = work / PAYLOAD_PROXY_NAME
    assert stat.S_IMODE(os.stat(user_proxy).st_mode) == 0o600
    stdout = (work / "payload.stdout").read_text()
    assert f"user proxy: {user_proxy}" in stdout and f"runGen args: {proxy} --extra" in stdout
    assert (work / "seen_user_proxy.txt").read_text() == "USER-PROXY-TEXT\n"
    # masked inside the container, and without one by the payload guard's mount namespace
    assert "PILOTSECRET" not in (work / "seen_pilot_proxy.txt").read_text()


def test_refused_proxy_leaves_no_credential(tmp_path, queue, pilot_credentials, trf_server):
    directory, base = trf_server
    (directory / "runGen-00-01").write_text(USER_TRF)
    job = make_job(tmp_path / "job", transformation=f"{base}/runGen-00-01", jobPars="/dev/null",
                   swRelease="NULL", homepackage="NULL", cmtConfig="NULL")
    run_job_payload(job, "atlas", communicator=FakeCommunicator(status=90))
    assert "user proxy: none" in (tmp_path / "job" / "payload.stdout").read_text()
    assert not (tmp_path / "job" / PAYLOAD_PROXY_NAME).exists()
