"""Whole pilots and the HTTP client: exit status when the server never answered, stop with the server
down, getJob not resent, ``--cacert`` given relative with ``-a``, queue data over HTTPS with ``--cacert``.

The pilots are real processes against the dev server (or a port where nothing listens, or the
hostile server); run-time bounds are generous and only prove that nothing hangs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


from pilot.devserver.samples import sample_job
from tests.e2e.conftest import REPO, TEST_CONFIG, wait_for_file
from tests.faults.hostile_server import HostileServer

NO_ANSWER_STATUS = 79  # pilot code 1318, doc/source/usage.rst


def _pilot(devserver, tmp_path, url: str, extra: list = (), env: dict = None, config: str = "",
           timeout: float = 120) -> tuple:
    """Run a pilot whose server is ``url`` (queue and storage data from the dev server); (status, stderr, s)."""
    cfg = tmp_path / "test.cfg"
    cfg.write_text(TEST_CONFIG + f"\n[Rucio]\nurl: {devserver.url}/traces/\n" + config)
    base, port = url.rsplit(":", 1)
    cmd = [sys.executable, str(REPO / "pilot.py"), "-q", "DEV_QUEUE", "--pilot-user", "generic",
           "--url", base, "-p", port, "-a", str(tmp_path), "--config", str(cfg),
           "--queuedata-url", f"{devserver.url}/queuedata/{{pandaqueue}}.json",
           "--storagedata-url", f"{devserver.url}/storagedata.json", "-d", *extra]
    penv = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and k != "PILOT_CACERT"}
    penv.update(PYTHONPATH=str(REPO), **(env or {}))
    start = time.monotonic()
    result = subprocess.run(cmd, cwd=tmp_path, env=penv, capture_output=True, text=True, timeout=timeout)
    return result.returncode, result.stderr, time.monotonic() - start


def _dead_port() -> int:
    probe = HostileServer()
    port = probe.port
    probe.close()
    return port


def test_unreachable_server_exits_with_its_status_and_says_why(devserver, tmp_path):
    status, err, _ = _pilot(devserver, tmp_path, f"http://127.0.0.1:{_dead_port()}", ["-x", "2"])
    assert status == NO_ANSWER_STATUS, err[-3000:]
    lines = [line for line in err.splitlines() if "no answer from the PanDA server" in line]
    assert len(lines) == 1 and "server unreachable" in lines[0] and "refused" in lines[0], err[-3000:]


def test_tls_verification_failure_ends_the_pilot_at_once(devserver, tmp_path):
    other_ca = "/etc/ssl/certs/ca-certificates.crt"  # a real CA bundle, not the dev server's CA
    status, err, seconds = _pilot(devserver, tmp_path, devserver.https_url, ["-x", "20", "--cacert", other_ca],
                                  config="\n[Pilot]\ngetjob_retry_wait: 30\n")
    assert status == NO_ANSWER_STATUS, err[-3000:]
    assert "TLS verification failed" in [line for line in err.splitlines() if "no answer from" in line][0]
    assert err.count("job request failed") == 1  # not asked again (20 tries, 30 s apart, were allowed)
    assert seconds < 60 and not devserver.requests("getJob")


def test_404_on_the_endpoint_ends_the_pilot_at_once(devserver, tmp_path):
    with HostileServer() as server:  # answers 404 to every path
        status, err, seconds = _pilot(devserver, tmp_path, f"http://127.0.0.1:{server.port}", ["-x", "20"],
                                      config="\n[Pilot]\ngetjob_retry_wait: 30\n")
        assert server.count("/server/panda/getJob") == 1  # legacy once, then the REST name once, no more
    assert status == NO_ANSWER_STATUS, err[-3000:]
    assert "HTTP 404" in [line for line in err.splitlines() if "no answer from" in line][0]
    assert seconds < 60


def test_unsupported_scheme_ends_the_pilot_at_once(devserver, tmp_path):
    """The option check refuses it at start (status 2); the client would too (79, see test_http_hostile)."""
    status, err, seconds = _pilot(devserver, tmp_path, "ftp://127.0.0.1:21", ["-x", "20"],
                                  config="\n[Pilot]\ngetjob_retry_wait: 30\n")
    said = [line for line in err.splitlines() if "ftp://127.0.0.1" in line and
            ("not an http" in line or "unsupported URL" in line)]
    assert status in (2, NO_ANSWER_STATUS) and said, err[-3000:]
    assert seconds < 60 and not devserver.requests("getJob")


def test_getjob_is_not_resent_after_its_reply_timed_out(devserver, tmp_path):
    with HostileServer(fallback="silent") as server:  # reads getJob, never answers
        status, err, _ = _pilot(devserver, tmp_path, f"http://127.0.0.1:{server.port}", ["-x", "1"],
                                config="\n[Pilot]\nhttp_maxtime: 2\nhttp_connect_timeout: 2\n")
        assert server.count("/server/panda/getJob") == 1, err[-3000:]
    assert status == NO_ANSWER_STATUS and "not sent again" in err, err[-3000:]


def test_relative_cacert_with_workdir_and_https_queue_data(devserver, tmp_path):
    """``--cacert ca.pem`` relative to the launch dir still verifies after ``-a`` moved the pilot, for
    getJob and for queue/storage data downloaded over HTTPS (the same client)."""
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    launch = tmp_path / "launch"
    launch.mkdir()
    (launch / "ca.pem").write_bytes(open(devserver.cacert, "rb").read())
    work = tmp_path / "work"
    work.mkdir()
    cfg = launch / "test.cfg"
    cfg.write_text(TEST_CONFIG + f"\n[Rucio]\nurl: {devserver.https_url}/traces/\n")
    base, port = devserver.https_url.rsplit(":", 1)
    cmd = [sys.executable, str(REPO / "pilot.py"), "-q", "DEV_QUEUE", "--pilot-user", "generic", "--url", base,
           "-p", port, "-a", str(work), "--config", "test.cfg", "--cacert", "ca.pem", "-x", "1", "-d",
           "--queuedata-url", f"{devserver.https_url}/queuedata/{{pandaqueue}}.json",
           "--storagedata-url", f"{devserver.https_url}/storagedata.json"]
    env = {k: v for k, v in os.environ.items() if k not in ("PILOT_CACERT", "X509_CERT_DIR")}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(cmd, cwd=launch, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    assert devserver.wait_final(pandaid, timeout=30)["state"] == "finished"
    assert "CERTIFICATE_VERIFY_FAILED" not in result.stderr


def test_missing_cacert_is_an_error_at_start(devserver, tmp_path):
    status, err, seconds = _pilot(devserver, tmp_path, devserver.https_url, ["--cacert", "no-such-ca.pem"])
    assert status != 0 and "--cacert" in err and "no-such-ca.pem" in err
    assert seconds < 30 and not devserver.requests("getJob")


def test_sigterm_with_the_server_down_exits_quickly_and_keeps_the_final_update(devserver, start_pilot):
    job = sample_job(devserver.storage_dir, overrides={"jobPars": "-c 'echo $$ > payload.pid; sleep 300'"})
    pandaid = devserver.submit(job)
    run = start_pilot(config_text="\n[Pilot]\nhttp_retries: 10\nhttp_backoff: 20\n")
    devserver.wait_state(pandaid, "running", timeout=60)
    assert wait_for_file(run.main_dir() / f"PanDA_Pilot-{pandaid}" / "payload.pid", 30)
    devserver.stop()  # the server is down from here on
    start = time.monotonic()
    os.kill(run.proc.pid, signal.SIGTERM)
    status = run.wait(90)
    assert time.monotonic() - start < 30, run.log_text()[-4000:]
    assert status == 143
    kept = list(run.workdir.rglob(f"{pandaid}.final.json"))
    assert kept, run.log_text()[-4000:]
