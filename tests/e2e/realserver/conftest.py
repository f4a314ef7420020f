"""Whole pilot runs against the real PanDA server (panda-server from PyPI, REST) of ci/panda.

``scripts/test.sh`` installs and starts it (``ci/panda/install.sh``, ``start.sh``); the session
fixture starts it too when it is installed but not running. Each test submits generic jobs with the
server's own ``JobSpec`` (``ci/panda/submit_job.py``), runs the pilot against the server, and reads
the job's final record from the server's PostgreSQL database with ``psql``.

The one skip: a clone without the PanDA database schema beside it (``PANDA_DB_SCHEMA``, default
``../shared/vendor/panda-database-0.1.6``): the schema is on no registry, so nothing can install it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from tests.e2e.conftest import REPO, TEST_CONFIG, PilotRun

CI = REPO / "ci" / "panda"
#: states a job ends in once the server's add_main daemon has moved it out of holding
FINAL_STATES = ("finished", "failed", "cancelled", "closed")


def ci_env() -> dict:
    """The settings of ci/panda/env.sh, as the scripts compute them."""
    out = subprocess.run(["bash", "-c", f". {CI}/env.sh && env -0"], capture_output=True, check=True,
                         timeout=30).stdout.decode()
    env = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    return {k: v for k, v in env.items() if k.startswith("PANDA_")}


@dataclass
class RealServer:
    """The running server: its URL, the test queue, the database, job submission."""

    env: dict

    @property
    def url(self) -> str:
        return self.env["PANDA_URL"]

    @property
    def port(self) -> str:
        return self.env["PANDA_PORT"]

    @property
    def queue(self) -> str:
        return self.env["PANDA_QUEUE"]

    @property
    def root(self) -> Path:
        return Path(self.env["PANDA_ROOT"])

    @property
    def storage(self) -> Path:
        return Path(self.env["PANDA_STORAGE"])

    @property
    def trf_dir(self) -> Path:
        """Served as ``<url>/trf/``."""
        return self.root / "trf"

    def psql(self, query: str) -> list:
        """Rows of a query on the server's database, each a dict (through ``row_to_json``)."""
        wrapped = f"SELECT row_to_json(q) FROM ({query}) q"
        out = subprocess.run([f"{self.env['PANDA_PG_BIN']}/psql", "-X", "-q", "-At", "-h", "127.0.0.1",
                              "-p", self.env["PANDA_PG_PORT"], "-U", "postgres", "-d", self.env["PANDA_DB_NAME"],
                              "-v", "ON_ERROR_STOP=1", "-c", wrapped],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def submit(self, *jobs: dict) -> list:
        """Submit job descriptions (see ci/panda/submit_job.py); returns their PandaIDs."""
        descs = [dict({"site": self.queue, "ddm": self.env["PANDA_DDM"], "dataset": "pilotci.test"}, **job)
                 for job in jobs]
        out = subprocess.run([f"{self.env['PANDA_ROOT']}/venv/bin/python", str(CI / "submit_job.py"), self.url],
                             input=json.dumps(descs), capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, **{k: v for k, v in self.env.items()}))
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    def set_aside_waiting_jobs(self) -> None:
        """Jobs an earlier test left activated on the queue go to another site: each test gets its own."""
        subprocess.run([f"{self.env['PANDA_PG_BIN']}/psql", "-X", "-q", "-h", "127.0.0.1", "-p",
                        self.env["PANDA_PG_PORT"], "-U", "postgres", "-d", self.env["PANDA_DB_NAME"], "-c",
                        f"UPDATE doma_panda.jobsactive4 SET computingsite = 'PILOT_CI_SET_ASIDE' "
                        f"WHERE computingsite = '{self.queue}' AND jobstatus = 'activated'"],
                       check=True, capture_output=True, timeout=60)

    def job(self, pandaid: int) -> Optional[dict]:
        """The job's row (archived first, else active), None when unknown."""
        for table in ("jobsarchived4", "jobsactive4", "jobsdefined4"):
            rows = self.psql(f"SELECT * FROM doma_panda.{table} WHERE pandaid = {int(pandaid)}")
            if rows:
                return rows[0]
        return None

    def wait_final(self, pandaid: int, timeout: float = 90) -> dict:
        """The job's record once the server has it in a final state (add_main runs every 5 s)."""
        deadline = time.monotonic() + timeout
        row = None
        while time.monotonic() < deadline:
            row = self.job(pandaid)
            if row and row["jobstatus"] in FINAL_STATES:
                return row
            time.sleep(0.5)
        raise AssertionError(f"job {pandaid} not final after {timeout} s: {row and row['jobstatus']}")

    def files(self, pandaid: int) -> dict:
        """lfn -> filestable4 row of the job."""
        rows = self.psql(f"SELECT * FROM doma_panda.filestable4 WHERE pandaid = {int(pandaid)}")
        return {r["lfn"]: r for r in rows}

    def update_job_log(self, pandaid: int) -> list:
        """The server's log lines of the update_job calls of a job (every received parameter is in them)."""
        path = self.root / "log" / "panda-api_pilot.log"
        marker = f"update_job({int(pandaid)},"
        with open(path, errors="replace") as handle:
            return [line for line in handle if marker in line]

    def states(self, pandaid: int) -> list:
        """The job's state history as the server logged it."""
        rows = self.psql(f"SELECT jobstatus FROM doma_panda.jobs_statuslog WHERE pandaid = {int(pandaid)} "
                         "ORDER BY modificationtime")
        return [r["jobstatus"] for r in rows]


@pytest.fixture(scope="session")
def realserver():
    env = ci_env()
    schema = Path(env["PANDA_DB_SCHEMA"])
    if not (schema / "postgres" / "sqls" / "init_step.sql").is_file():
        pytest.skip(f"the PanDA database schema is missing at {schema} (PANDA_DB_SCHEMA): it is on no registry, "
                    f"so the real PanDA server cannot be set up in this clone")
    if subprocess.run(["bash", str(CI / "status.sh")], capture_output=True, timeout=60).returncode != 0:
        started = subprocess.run(["bash", str(CI / "start.sh")], capture_output=True, text=True, timeout=600)
        assert started.returncode == 0, (f"the real PanDA server does not start (install it with "
                                         f"ci/panda/install.sh): {started.stderr[-3000:]}")
    return RealServer(env)


def pilot_command(server: RealServer, workdir: Path, config_path: Path, extra: Optional[list] = None) -> list:
    return [sys.executable, str(REPO / "pilot.py"), "-q", server.queue, "--pilot-user", "generic",
            "-j", "managed", "--url", "http://127.0.0.1", "-p", server.port, "-a", str(workdir),
            "--config", str(config_path),
            "--queuedata-url", f"{server.url}/cache/schedconfig/{{pandaqueue}}.all.json",
            "--storagedata-url", str(server.root / "storagedata.json"), "-x", "1", "-v", "1", "-d"] + (extra or [])


@pytest.fixture
def start_pilot(tmp_path, realserver):
    """Start a pilot against the real server; returns a PilotRun (call .wait())."""
    realserver.set_aside_waiting_jobs()
    runs = []

    def start(extra: Optional[list] = None, config_text: str = "") -> PilotRun:
        wdir = tmp_path / f"pilot{len(runs)}"
        wdir.mkdir(parents=True, exist_ok=True)
        cfg = wdir / "test.cfg"
        # trace reports stay on loopback (the server answers 404: the pilot logs it and goes on)
        cfg.write_text(TEST_CONFIG + f"\n[Rucio]\nurl: {realserver.url}/traces/\n" + config_text)
        log = wdir / "pilot.stderr"
        penv = dict(os.environ, PYTHONPATH=str(REPO))
        with open(log, "ab") as handle:
            proc = subprocess.Popen(pilot_command(realserver, wdir, cfg, extra), cwd=wdir, stdout=handle,
                                    stderr=subprocess.STDOUT, env=penv, start_new_session=True)
        run = PilotRun(proc, wdir, log)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()
