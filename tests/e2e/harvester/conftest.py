"""Whole pilot runs driven through files: Harvester's access point, aCT's session dir, the two server protocols.

The dev server still serves queue and storage data (the pilot needs them in every mode); the tests
check through ``devserver.requests()`` that no job request or update reaches it when files are used.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

from pilot.devserver.protocol import job_reply
from tests.e2e.conftest import REPO, TEST_CONFIG, PilotRun

#: every job request and job update, in both protocol generations
JOB_CALLS = ("getJob", "updateJob", "updateJobsInBulk", "acquire_jobs", "update_job", "update_jobs_bulk")

#: quick polling of Harvester's files in tests
HARVESTER_CONFIG = """
[Harvester]
job_poll_interval: 0.2
heartbeat_interval: 1
kill_worker_file: kill_worker.json
"""


def harvester_params(definition: dict, pandaid: int) -> dict:
    """The job parameters Harvester got from getJob for a definition (what it writes into the job file)."""
    params = job_reply(definition, pandaid)
    params.pop("StatusCode", None)
    return params


def server_job_calls(devserver) -> list:
    """Job requests and updates that reached the server."""
    return [r for r in devserver.requests() if r["method"] in JOB_CALLS]


@pytest.fixture
def run_pilot(tmp_path, devserver):
    """Start a pilot; ``workdir`` is its launch dir; ``use_a`` adds ``-a <launch dir>``."""
    runs = []

    def start(extra: Optional[list] = None, config_text: str = "", workdir: Optional[Path] = None,
              use_a: bool = True, env: Optional[dict] = None, queue: str = "DEV_QUEUE") -> PilotRun:
        wdir = workdir or tmp_path / f"pilot{len(runs)}"
        wdir.mkdir(parents=True, exist_ok=True)
        cfg = tmp_path / f"test{len(runs)}.cfg"
        cfg.write_text(TEST_CONFIG + f"\n[Rucio]\nurl: {devserver.url}/traces/\n" + HARVESTER_CONFIG + config_text)
        base = devserver.url.rsplit(":", 1)
        cmd = [sys.executable, str(REPO / "pilot.py"), "-q", queue, "--pilot-user", "generic",
               "--url", base[0], "-p", base[1], "--config", str(cfg),
               "--queuedata-url", f"{devserver.url}/queuedata/{{pandaqueue}}.json",
               "--storagedata-url", f"{devserver.url}/storagedata.json", "-d"]
        if use_a:
            cmd += ["-a", str(wdir), "--cleanup", "false"]  # the tests read the main dir afterwards
        cmd += extra or []
        log = tmp_path / f"pilot{len(runs)}.stderr"
        drop = ("HARVESTER_ID", "HARVESTER_WORKER_ID", "HARVESTER_WORKDIR", "HARVESTER_PILOT_CONFIG")
        penv = {k: v for k, v in os.environ.items() if k not in drop}
        penv.update(PYTHONPATH=str(REPO), PILOT_CACERT=str(devserver.cacert), **(env or {}))
        with open(log, "ab") as handle:
            proc = subprocess.Popen(cmd, cwd=wdir, stdout=handle, stderr=subprocess.STDOUT, env=penv,
                                    start_new_session=True)
        run = PilotRun(proc, wdir, log)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()
