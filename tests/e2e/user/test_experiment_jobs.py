"""Whole pilot runs of ATLAS (fake CVMFS), generic and example-plugin jobs against the dev server.

The ATLAS jobs use a fake CVMFS tree made by the test (``ATLAS_SW_BASE`` points the pilot at it); a
job asks for bubblewrap with ``--overwriteQueueData={'container_type': 'bwrap:pilot'}``.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import sys
import threading
from pathlib import Path

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "user"))
from fakesite import RELEASE, make_fake_cvmfs  # noqa: E402

BWRAP = "--overwriteQueueData={'container_type':'bwrap:pilot'}"


@pytest.fixture
def cvmfs(tmp_path):
    return make_fake_cvmfs(tmp_path / "cvmfs")


@pytest.fixture
def pilot_secret(tmp_path):
    """A pilot 'proxy' file the payloads must not be able to read."""
    path = tmp_path / "secrets" / "x509up_pilot"
    path.parent.mkdir()
    path.write_text("-----BEGIN CERTIFICATE-----\nPILOTSECRET\n-----END CERTIFICATE-----\n")
    path.chmod(0o600)
    return path


def _production_job(devserver, extra_pars: str = "", **overrides) -> dict:
    job = sample_job(devserver.storage_dir)
    out = job["outFiles"].split(",")[0]
    job.update({"transformation": "Sim_tf.py", "swRelease": f"Atlas-{RELEASE}",
                "homepackage": f"AtlasOffline/{RELEASE}", "cmtConfig": "x86_64-centos7-gcc8-opt",
                "jobPars": f"--maxEvents=5 --outputHITSFile={out} {extra_pars}".strip()})
    job.update(overrides)
    return job


def _final(devserver, pandaid, run):
    record = devserver.wait_final(pandaid, timeout=60)
    assert record.get("final_update"), run.log_text()[-3000:]
    return record, record["final_update"]


#: the ATLAS plug-in asks for a 48 h VOMS proxy before getJob (pilot.control.preflight); these runs
#: use a fake proxy file (a secret the payload must not read), so the credential check is off (-t)
ATLAS_NO_PROXY_CHECK = ["--pilot-user", "atlas", "-t"]


def _atlas_env(cvmfs, secret, **extra):
    env = {"ATLAS_SW_BASE": str(cvmfs), "X509_USER_PROXY": str(secret)}
    env.update(extra)
    return env


def test_atlas_production_job_in_bubblewrap(devserver, start_pilot, cvmfs, pilot_secret):
    assert shutil.which("bwrap"), "bubblewrap is not installed: run scripts/install-test-deps.sh"
    job = _production_job(devserver, f"{BWRAP} --secret={pilot_secret}")
    pandaid = devserver.submit(job)
    run = start_pilot(extra=ATLAS_NO_PROXY_CHECK, env=_atlas_env(cvmfs, pilot_secret))
    run.wait(180)
    record, final = _final(devserver, pandaid, run)
    assert record["state"] == "finished", (final.get("pilotErrorDiag"), run.log_text()[-3000:])
    assert int(final["pilotErrorCode"]) == 0 and int(final["nEvents"]) == 5
    metrics = devserver.updates(pandaid)[-1]["fields"]["jobMetrics"]  # as sent on the wire
    assert "nEvents=5" in metrics and "dbTime=1.5" in metrics and "dbData=2048" in metrics
    meta = final["metaData"]
    assert (json.loads(meta) if isinstance(meta, str) else meta)["exitMsg"] == "OK"
    workdir = run.main_dir() / f"PanDA_Pilot-{pandaid}"
    stdout = (workdir / "payload.stdout").read_text()
    assert "fake asetup: release 21.0.15 ready" in stdout
    assert "overwriteQueueData" not in stdout  # the pilot's token never reaches the payload


def test_atlas_production_failure_is_diagnosed(devserver, start_pilot, cvmfs, pilot_secret):
    job = _production_job(devserver, "--fail=badalloc")
    pandaid = devserver.submit(job)
    run = start_pilot(extra=ATLAS_NO_PROXY_CHECK, env=_atlas_env(cvmfs, pilot_secret))
    run.wait(180)
    record, final = _final(devserver, pandaid, run)
    assert record["state"] == "failed"
    assert int(final["pilotErrorCode"]) == ErrorCodes.BADALLOC, final.get("pilotErrorDiag")
    assert int(final["exeErrorCode"]) == 65 and "bad_alloc" in final.get("pilotLog", "")


def test_atlas_missing_release_is_diagnosed(devserver, start_pilot, cvmfs, pilot_secret):
    job = _production_job(devserver, swRelease="Atlas-23.0.1", homepackage="Athena/23.0.1")
    pandaid = devserver.submit(job)
    run = start_pilot(extra=ATLAS_NO_PROXY_CHECK, env=_atlas_env(cvmfs, pilot_secret))
    run.wait(180)
    _record, final = _final(devserver, pandaid, run)
    assert int(final["pilotErrorCode"]) == ErrorCodes.NORELEASEFOUND


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def trf_web(tmp_path):
    root = tmp_path / "www"
    (root / "trf" / "user").mkdir(parents=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root / "trf" / "user", f"http://127.0.0.1:{server.server_address[1]}/trf"
    server.shutdown()
    server.server_close()


USER_TRF = """#!/bin/bash
# user analysis transformation served by the test web server
out="$1"; secret="$2"
wc -c < PoolFileCatalog.xml > /dev/null
cat dev.input.*txt | wc -c > "$out"
echo "proxyvar=${X509_USER_PROXY:-none}"
if cat "$secret" 2>/dev/null | grep -q PILOTSECRET; then echo "LEAKED"; fi
"""


def test_atlas_user_analysis_job(devserver, start_pilot, cvmfs, pilot_secret, trf_web):
    directory, base = trf_web
    (directory / "runGen-00-00-02").write_text(USER_TRF)
    job = sample_job(devserver.storage_dir)
    out = job["outFiles"].split(",")[0]
    job.update({"transformation": f"{base}/user/runGen-00-00-02", "swRelease": "NULL", "homepackage": "NULL",
                "prodSourceLabel": "user", "jobPars": f"{out} {pilot_secret} {BWRAP}"})
    pandaid = devserver.submit(job)
    run = start_pilot(extra=ATLAS_NO_PROXY_CHECK,
                      env=_atlas_env(cvmfs, pilot_secret, PILOT_ALLOWED_TRF_URLS=base))
    run.wait(180)
    record, final = _final(devserver, pandaid, run)
    assert record["state"] == "finished", (final.get("pilotErrorDiag"), run.log_text()[-3000:])
    workdir = run.main_dir() / f"PanDA_Pilot-{pandaid}"
    stdout = (workdir / "payload.stdout").read_text()
    assert "LEAKED" not in stdout
    # no proxy at all, or the user's own one in the job dir (when the pilot fetched it): never the pilot's
    proxyvar = stdout.split("proxyvar=")[1].split()[0]
    assert proxyvar == "none" or proxyvar == str(workdir / "payload_x509.proxy"), proxyvar
    # the transformation was downloaded into the job dir (and removed again before the log tarball)
    assert "downloaded transformation runGen-00-00-02" in run.log_text()
    assert not (workdir / "runGen-00-00-02").exists()


def test_generic_job_in_bubblewrap(devserver, start_pilot, pilot_secret):
    job = sample_job(devserver.storage_dir)
    out = job["outFiles"].split(",")[0]
    job["jobPars"] = (f"-c 'cat dev.input.*txt | wc -c > {out}; ls /proc | grep -c \"^[0-9]\" > nproc.txt;"
                      f" cat {pilot_secret} > seen.txt 2>&1; echo var=${{X509_USER_PROXY:-none}}' {BWRAP}")
    pandaid = devserver.submit(job)
    run = start_pilot(env={"X509_USER_PROXY": str(pilot_secret)})
    run.wait(120)
    record, final = _final(devserver, pandaid, run)
    assert record["state"] == "finished", (final.get("pilotErrorDiag"), run.log_text()[-3000:])
    workdir = run.main_dir() / f"PanDA_Pilot-{pandaid}"
    assert "var=none" in (workdir / "payload.stdout").read_text()
    assert "PILOTSECRET" not in (workdir / "seen.txt").read_text()
    assert int((workdir / "nproc.txt").read_text()) < 10


def test_example_plugin_job(devserver, start_pilot):
    job = sample_job(devserver.storage_dir)
    pandaid = devserver.submit(job)
    run = start_pilot(extra=["--pilot-user", "example"])
    run.wait(120)
    record, final = _final(devserver, pandaid, run)
    assert record["state"] == "finished", (final.get("pilotErrorDiag"), run.log_text()[-3000:])
    stdout = (run.main_dir() / f"PanDA_Pilot-{pandaid}" / "payload.stdout").read_text()
    assert f"example experiment: job {pandaid}" in stdout
