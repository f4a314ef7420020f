"""A real single-node Slurm (Debian's slurm-wlm with munge, started by scripts/hpc/slurm-start.sh on
127.0.0.1 with private ports, socket and state; stopped at the end) runs four pilot wrapper jobs
submitted with sbatch. Each pilot takes one job from the dev server. One slot (``--time=2``) is too
short for its payload (300 s): the pilot reads the slot's end from Slurm (squeue), stops the payload
in time (1213), uploads the log and reports the job before Slurm's limit, so Slurm never kills it.
Every update carries pilotID ``...|SLURM|...`` and batchID = the Slurm job id.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.info import default_queuedata
from pilot.devserver.samples import sample_job
from tests.e2e.conftest import TEST_CONFIG
from tests.hpcsite import REPO, require

SCRIPTS = REPO / "scripts" / "hpc"
SLURM_TOOLS = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "munged")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A private Slurm cluster for this module; yields the environment to talk to it."""
    require(*SLURM_TOOLS)
    if os.geteuid() != 0:
        message = "the Slurm test starts slurmd, which needs root"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    state = tmp_path_factory.mktemp("slurm")
    env = dict(os.environ, PILOT_SLURM_CTLD_PORT=str(free_port()), PILOT_SLURM_D_PORT=str(free_port()))
    started = subprocess.run(["bash", str(SCRIPTS / "slurm-start.sh"), str(state)], env=env, capture_output=True,
                             text=True, timeout=120)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        env["SLURM_CONF"] = str(state / "slurm.conf")
        yield env
    finally:
        subprocess.run(["bash", str(SCRIPTS / "slurm-stop.sh"), str(state)], env=env, capture_output=True,
                       timeout=60)


WRAPPER = """#!/bin/bash
# a pilot wrapper as a site would submit it
cd {workdir}
export PYTHONPATH={repo}
exec {python} {repo}/pilot.py -q {queue} --pilot-user generic --url {host} -p {port} -a {workdir} \\
    --config {config} --queuedata-url {server}/queuedata/{{pandaqueue}}.json \\
    --storagedata-url {server}/storagedata.json -x 1 -d --cleanup false
"""


def sbatch(env: dict, script: Path, minutes: int, output: Path) -> str:
    result = subprocess.run(["sbatch", "--parsable", f"--time={minutes}", "--mem=300", "-c", "1", "-J", script.stem,
                             "-o", str(output), str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(";")[0]


def job_record(env: dict, jobid: str) -> dict:
    """scontrol's view of a job as {key: value}."""
    out = subprocess.run(["scontrol", "-o", "show", "job", jobid], env=env, capture_output=True, text=True,
                         timeout=30).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def wait_gone(env: dict, jobids: list, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(jobids)], env=env, capture_output=True,
                             text=True, timeout=30).stdout.split()
        if not out:
            return
        time.sleep(1)
    raise AssertionError(f"Slurm jobs still queued or running: {out}")


def test_four_pilots_under_slurm_one_slot_too_short(slurm, devserver, tmp_path):
    host, port = devserver.url.rsplit(":", 1)
    payloads = ["sleep 2", "sleep 2", "sleep 2", "echo $$ > payload.pid; sleep 300"]
    pandaids, batch_ids, wrappers = [], [], []
    for index, payload in enumerate(payloads):
        queue = f"SLURM_Q{index}"
        devserver.set_queuedata(queue, default_queuedata(queue), merge=False)
        job = sample_job(devserver.storage_dir, queue=queue,
                         overrides={"jobPars": f"-c 'cat dev.input.*txt | wc -c > dev.output.txt; {payload}'"})
        job["jobPars"] = job["jobPars"].replace("dev.output.txt", job["outFiles"].split(",")[0])
        pandaids.append(devserver.submit(job))
        workdir = tmp_path / f"pilot{index}"
        workdir.mkdir()
        config = workdir / "pilot.cfg"
        config.write_text(TEST_CONFIG + f"\n[Rucio]\nurl: {devserver.url}/traces/\n")
        script = workdir / f"pilot{index}.sh"
        script.write_text(WRAPPER.format(workdir=workdir, repo=REPO, python=sys.executable, queue=queue, host=host,
                                         port=port, config=config, server=devserver.url))
        wrappers.append(workdir)
    # the short slot goes first, the others beside it (the partition shares the cores)
    for index, workdir in enumerate(wrappers):
        minutes = 2 if index == 3 else 10
        batch_ids.append(sbatch(slurm, workdir / f"pilot{index}.sh", minutes, workdir / "slurm.out"))
    started = time.time()

    records = [devserver.wait_final(pandaid, timeout=200) for pandaid in pandaids]
    wait_gone(slurm, batch_ids, timeout=120)
    logs = [(w / "slurm.out").read_text(errors="replace") for w in wrappers]

    for index in range(3):
        final = records[index]["final_update"]
        assert records[index]["state"] == "finished", logs[index][-3000:]
        assert int(final["pilotErrorCode"]) == 0
    for index, record in enumerate(records):
        raw = devserver.updates(pandaids[index])[-1]["fields"]
        assert raw["batchID"] == batch_ids[index]
        assert raw["pilotID"].split("|")[1] == "SLURM"
        state = job_record(slurm, batch_ids[index])
        assert state.get("JobState") in ("COMPLETED", "FAILED"), (state, logs[index][-2000:])

    # the short slot: stopped by the pilot before Slurm's limit, log uploaded, job reported failed with 1213
    final = records[3]["final_update"]
    log = logs[3]
    assert records[3]["state"] == "failed", log[-3000:]
    assert int(final["pilotErrorCode"]) == ErrorCodes.REACHEDMAXTIME, log[-3000:]
    assert "batch slot ends in" in log
    short = job_record(slurm, batch_ids[3])
    assert short["JobState"] != "TIMEOUT" and short["TimeLimit"] == "00:02:00"
    run_min, run_sec = (int(x) for x in short["RunTime"].split(":")[-2:])
    assert run_min * 60 + run_sec < 120, short  # ended by the pilot, before the 2-minute limit
    raw = devserver.updates(pandaids[3])[-1]["fields"]
    job_log = json.loads(raw["xml"])
    assert any(lfn.endswith(".tgz") for lfn in job_log), job_log  # the log reached storage
    assert time.time() - started < 200
