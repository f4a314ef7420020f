"""Alternative stage-out in the job flow: the primary storage is down, the output goes to the next one.

The queue's write storages are ``DEAD_DISK`` (WebDAV on a closed port: a storage that is down) and the
dev server's ``LOCAL_DISK``; the job asks for ``DEAD_DISK``. With ``altStageOut=on`` (or the queue's
``allow_altstageout``) the output and the log land on ``LOCAL_DISK`` and the job finishes; without it
the job is holding (its outputs wait for a later pilot) and nothing lands on ``LOCAL_DISK``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pilot.copytool.common import deterministic_path
from pilot.devserver.samples import sample_job

from .conftest import storage_env

QUEUE = "DEV_QUEUE"
DEAD = {"name": "DEAD_DISK", "id": 78, "type": "DATADISK", "is_deterministic": True, "state": "ACTIVE",
        "site": "DEV_SITE", "rprotocols": {},
        "arprotocols": {a: [{"endpoint": "davs://127.0.0.1:1", "path": "/dead/", "flavour": "WEBDAV", "id": 9}]
                        for a in ("read_lan", "write_lan", "read_wan", "write_wan")}}


def setup_queue(devserver, queue_extra: dict) -> None:
    devserver.set_storagedata("DEAD_DISK", DEAD, merge=False)
    devserver.set_queuedata(QUEUE, {
        "copytools": {"mv": {"setup": ""}, "gfal": {"setup": ""}},
        "acopytools": {"pr": ["mv"], "pw": ["gfal"], "pl": ["gfal"]},
        "astorages": {"pw": ["DEAD_DISK", "LOCAL_DISK"], "pl": ["DEAD_DISK", "LOCAL_DISK"],
                      "read_lan": ["LOCAL_DISK"]},
        **queue_extra})


def dead_job(devserver, **overrides) -> dict:
    job = sample_job(devserver.storage_dir)
    job.update(ddmEndPointOut="DEAD_DISK,DEAD_DISK", fileDestinationSE="DEAD_DISK,DEAD_DISK",
               destinationSE="DEAD_DISK", **overrides)
    return job


@pytest.fixture(autouse=True)
def need_gfal():
    if shutil.which("gfal-copy") is None:
        pytest.skip("gfal-copy is not installed")


@pytest.mark.parametrize("where", ["job", "queue"])
def test_primary_down_goes_to_the_alternative(devserver, start_pilot, where):
    setup_queue(devserver, {"allow_altstageout": True} if where == "queue" else {})
    job = dead_job(devserver, **({"altStageOut": "on"} if where == "job" else {}))
    pandaid = devserver.submit(job)
    run = start_pilot(env=storage_env())
    run.wait(240)
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "finished", run.log_text()[-4000:]
    store = Path(devserver.storage_dir)
    for lfn in (job["outFiles"].split(",")[0], job["logFile"]):
        assert (store / deterministic_path("dev", lfn)).is_file(), lfn
    assert "alternative stage-out for" in run.log_text()


def test_without_permission_the_output_waits_and_lands_nowhere(devserver, start_pilot):
    setup_queue(devserver, {"allow_altstageout": False})
    job = dead_job(devserver, altStageOut="on")  # the queue says no: it wins
    pandaid = devserver.submit(job)
    run = start_pilot(env=storage_env())
    run.wait(240)
    # a storage that is down is a transient failure: the job is holding, its outputs wait for recovery
    record = devserver.wait_state(pandaid, "holding", timeout=30)
    assert record["state"] == "holding", run.log_text()[-3000:]
    store = Path(devserver.storage_dir)
    assert not (store / deterministic_path("dev", job["outFiles"].split(",")[0])).exists()
    assert "alternative stage-out for" not in run.log_text()
