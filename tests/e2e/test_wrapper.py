"""The pilot as sites run it: the release tarball (scripts/make-dist.sh) under the batch wrapper
(scripts/pilot-wrapper.sh) on a plain Python with nothing installed and a clean environment.

One job runs as a real Slurm batch job (the private single-node Slurm of tests/e2e/hpc), the tarball
fetched over HTTP with curl; the signal tests check that the wrapper forwards SIGTERM, SIGINT and
SIGUSR1 to the pilot and exits with the pilot's status.
"""

from __future__ import annotations

import functools
import http.server
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job

from .conftest import REPO, TEST_CONFIG, pilot_command
from .hpc.test_hpc_slurm import job_record, slurm, wait_gone  # noqa: F401  (slurm: the cluster fixture)
from .test_install import clean_env, plain_python

WRAPPER = REPO / "scripts" / "pilot-wrapper.sh"


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(["bash", str(REPO / "scripts" / "make-dist.sh"), "--out", str(out)], capture_output=True,
                            text=True, timeout=300, env=clean_env(PYTHON=plain_python()), check=False)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.name == f"pilot-{(REPO / 'PILOTVERSION').read_text().strip()}.tar.gz"
    return out / "pilot.tar.gz"


@pytest.fixture
def http_file_server(tarball):
    """The tarball's directory over HTTP on 127.0.0.1 (where a site keeps its pilot releases)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tarball.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def site_options(devserver, workdir: Path) -> list:
    """The site's pilot options: the e2e command line without -a and --cleanup false (defaults apply)."""
    cfg = workdir / "site.cfg"
    cfg.write_text(TEST_CONFIG + f"\n[Rucio]\nurl: {devserver.url}/traces/\n")
    args = pilot_command(devserver, workdir, cfg)[2:]
    where = args.index("-a")
    del args[where:where + 2]
    where = args.index("--cleanup")
    del args[where:where + 2]
    return args


def test_a_job_through_the_wrapper_as_a_slurm_batch_job(slurm, devserver, http_file_server, tmp_path):  # noqa: F811
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    work = tmp_path / "batch"
    work.mkdir()
    python = plain_python()
    options = " ".join(f"'{a}'" for a in site_options(devserver, work))
    script = work / "job.sh"
    script.write_text(f"#!/bin/bash\nexport PATH=/usr/local/bin:/usr/bin:/bin\ncd {work}\n"
                      f"exec bash {WRAPPER} --piloturl {http_file_server}/pilot.tar.gz --python {python} "
                      f"-- {options}\n")
    env = {k: v for k, v in slurm.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    submitted = subprocess.run(["sbatch", "--parsable", "--export=NONE", "--time=5", "--mem=300", "-c", "1",
                                "-J", "pilot-wrapper", "-o", str(work / "slurm.out"), str(script)],
                               env=env, capture_output=True, text=True, timeout=60, check=False)
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip().split(";")[0]
    record = devserver.wait_final(pandaid, timeout=240)
    wait_gone(slurm, [batch_id], timeout=120)
    out = (work / "slurm.out").read_text(errors="replace")
    assert record["state"] == "finished", out[-4000:]
    fields = devserver.updates(pandaid)[-1]["fields"]
    assert fields["batchID"] == batch_id and fields["pilotID"].split("|")[1] == "SLURM"
    assert fields["pilotID"].endswith("|" + (REPO / "PILOTVERSION").read_text().strip())
    assert job_record(slurm, batch_id).get("JobState") == "COMPLETED", out[-3000:]
    assert "python 3.9." in out or not python.endswith("3.9.18/bin/python3"), out[:2000]
    assert f"from {http_file_server}/pilot.tar.gz" in out
    assert "pilot summary: " in out and "pilot exit status 0: success" in out.splitlines()[-1]
    # the unpacked code is gone, the pilot's own dir removed (--cleanup): only the shared areas stay
    left = {p.name for p in work.iterdir() if not (p.is_dir() and p.name.startswith("pilot_"))}
    assert left == {"job.sh", "site.cfg", "slurm.out"}, left


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig,code,status", [
    (signal.SIGTERM, ErrorCodes.SIGTERM, 143),
    (signal.SIGUSR1, ErrorCodes.SIGUSR1, 144),
    (signal.SIGINT, ErrorCodes.KILLSIGNAL, 130),
])
def test_the_wrapper_forwards_signals_and_reports_the_pilot_status(devserver, tarball, tmp_path, sig, code, status):
    job = sample_job(devserver.storage_dir, overrides={"jobPars": "-c 'touch started; sleep 300'"})
    pandaid = devserver.submit(job)
    work = tmp_path / "site"
    work.mkdir()
    cmd = ["bash", str(WRAPPER), "--piloturl", str(tarball), "--python", plain_python(), "--workdir", str(work),
           "--", *site_options(devserver, work), "--cleanup", "false"]
    log = tmp_path / "wrapper.log"
    with open(log, "wb") as handle:
        # the wrapper gets SIGINT's default disposition, as a batch system starts it: a test run started in
        # the background by a non-interactive shell ignores SIGINT, and bash cannot trap a signal that was
        # ignored when it started
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=clean_env(),
                                start_new_session=True, preexec_fn=_default_sigint)
    try:
        devserver.wait_state(pandaid, "running", timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(work.glob("PanDA_Pilot2_*/PanDA_Pilot-*/started")):
            time.sleep(0.1)
        assert list(work.glob("PanDA_Pilot2_*/PanDA_Pilot-*/started")), log.read_text()[-3000:]
        os.kill(proc.pid, sig)  # the wrapper only: it must pass the signal on
        assert proc.wait(90) == status, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed" and int(final["pilotErrorCode"]) == code
    text = log.read_text(errors="replace")
    assert f"received SIG{signal.Signals(sig).name[3:]}: forwarding it to the pilot" in text
    assert f"pilot exit status {status}: " in text.splitlines()[-1]


def test_wrapper_refuses_an_old_python_and_a_missing_tarball(tmp_path, tarball):
    old = "/root/.pyenv/versions/3.8.18/bin/python3"
    if os.path.exists(old):
        result = subprocess.run(["bash", str(WRAPPER), "--piloturl", str(tarball), "--python", old, "--workdir",
                                 str(tmp_path / "a"), "--", "-q", "X"], capture_output=True, text=True, timeout=60,
                                env=clean_env(), check=False)
        assert result.returncode == 3 and "needs 3.9 or newer" in result.stderr
    result = subprocess.run(["bash", str(WRAPPER), "--piloturl", str(tmp_path / "none.tar.gz"), "--python",
                             plain_python(), "--workdir", str(tmp_path / "b"), "--", "-q", "X"], capture_output=True,
                            text=True, timeout=60, env=clean_env(), check=False)
    assert result.returncode == 4 and "cannot fetch the pilot tarball" in result.stderr
    assert not list((tmp_path / "b").iterdir()), "nothing is left behind"
