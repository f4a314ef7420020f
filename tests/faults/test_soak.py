"""Soak: one multi-job pilot runs 200 short jobs while the dev server injects random faults.

Every job must end with exactly one final state on the server, and every finished job's output must
be on storage with the checksum the final update reported.
"""

from __future__ import annotations

import json
import os
import random
import zlib
from pathlib import Path

import pytest

from pilot.devserver.samples import sample_job, storage_path

JOBS = int(os.environ.get("PILOT_SOAK_JOBS", "200"))
CONFIG = "\n[Pilot]\nhttp_maxtime: 3\nhttp_connect_timeout: 3\nhttp_retries: 6\nhttp_backoff: 0.1\nheartbeat: 600\n"


def _random_rules(rng: random.Random, jobs: int) -> list:
    """Faults spread over the run: server errors, drops, garbage, slowness (getJob never loses a job)."""
    rules = []
    for _ in range(jobs // 4):
        method = rng.choice(["getJob", "updateJob", "updateJob", "traces"])
        action = rng.choice(["status", "drop", "malformed", "partial", "delay"])
        rule = {"method": method, "action": action, "count": 1, "after": rng.randrange(0, jobs * 3)}
        if action == "status":
            rule["status"] = rng.choice([500, 502, 503, 504])
        if action == "delay":
            rule["delay"] = rng.choice([0.5, 1.0, 4.0])
        if method == "getJob":
            rule["process"] = False  # a lost getJob reply would strand the job on any server
        rules.append(rule)
    return rules


@pytest.mark.slow
def test_soak_multi_job_with_random_faults(devserver, start_pilot):
    rng = random.Random(20261122)
    devserver.set_queuedata("DEV_QUEUE", {"timefloor": 600})
    jobs = {}
    for _ in range(JOBS):
        job = sample_job(devserver.storage_dir)
        jobs[devserver.submit(job)] = job
    for rule in _random_rules(rng, JOBS):
        devserver.inject(**rule)
    run = start_pilot(config_text=CONFIG, extra=["-v", str(JOBS * 2), "-x", "20"])
    run.wait(1200)
    counts = {"finished": 0, "failed": 0, "other": 0}
    for pandaid, job in jobs.items():
        record = devserver.job(pandaid)
        finals = [u for u in devserver.updates(pandaid) if u["fields"]["state"] in ("finished", "failed")]
        states = {u["fields"]["state"] for u in finals}
        assert len(states) == 1, (pandaid, record["state"], [u["fields"]["state"] for u in devserver.updates(pandaid)])
        state = states.pop()
        counts[state if state in counts else "other"] += 1
        if state == "finished":
            xml = json.loads(finals[0]["fields"]["xml"])
            out = job["outFiles"].split(",")[0]
            path = Path(storage_path(devserver.storage_dir, job["scopeOut"].split(",")[0], out))
            assert path.exists(), (pandaid, out)
            assert xml[out]["adler32"] == f"{zlib.adler32(path.read_bytes()) & 0xffffffff:08x}"
    print(f"soak: {JOBS} jobs, {counts}, rules {len(devserver.injections())}")
    assert counts["finished"] + counts["failed"] == JOBS
    assert counts["finished"] >= JOBS * 0.95, counts
