"""Direct access by size end to end, with the real XRootD server of ci/storage: with a direct access
size of 10 kB, the small input is copied into the work dir and the large one is given to the payload
as its root:// TURL (PoolFileCatalog.xml), which the payload reads with ``xrdcp -`` itself."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from pilot.devserver.samples import sample_job

from .conftest import require_servers, storage_env
from .test_copytool_jobs import on_endpoint, run_job, storage_entry, use_tool

pytestmark = pytest.mark.storage

SMALL, LARGE = b"a small input, copied\n" * 20, os.urandom(70_000)
#: the payload: every catalogue entry is read, a root:// one remotely; the byte counts go to stdout
READER = ("for pfn in $(grep -o name=[^[:space:]]* PoolFileCatalog.xml | cut -c7- | sed s/.$//); do "
          "case $pfn in root://*) echo REMOTE $(xrdcp -s $pfn - | wc -c);; *) echo LOCAL $(wc -c < $pfn);; esac; "
          "done")


@pytest.fixture
def xrd_queue(devserver, storage_area):
    require_servers("xrootd")
    if shutil.which("xrdcp") is None:
        pytest.skip("xrdcp is not installed")
    rel, area = storage_area
    proto = {"endpoint": "root://127.0.0.1:1094", "path": f"//{rel}/", "flavour": "XROOTD", "id": 1}
    use_tool(devserver, "xrdcp", "E2E_XRD", storage_entry("E2E_XRD", [proto]))
    return area


def _job(area: Path) -> dict:
    job = on_endpoint(sample_job(area, contents=[SMALL, LARGE]), "E2E_XRD")
    out = job["outFiles"].split(",")[0]
    job["jobPars"] = f"-c '{READER} | tee {out}'"
    job["transferType"] = "direct"  # the job declares direct I/O (Pilot 2's rule for production jobs)
    return job


def test_large_inputs_read_remotely_small_ones_copied(devserver, start_pilot, xrd_queue):
    devserver.set_queuedata("DEV_QUEUE", {"direct_access_lan": True, "direct_access_min_size": 10_000})
    job = _job(xrd_queue)
    small_lfn, large_lfn = job["inFiles"].split(",")
    pandaid, _, run = run_job(devserver, start_pilot, job, storage_env())
    workdir = next(run.main_dir().glob("PanDA_Pilot-*"))
    catalog = (workdir / "PoolFileCatalog.xml").read_text()
    assert re.search(rf'name="root://127\.0\.0\.1:1094//[^"]*{re.escape(large_lfn)}"', catalog), catalog
    assert f'name="{small_lfn}"' in catalog
    stdout = (workdir / "payload.stdout").read_text()
    assert f"REMOTE {len(LARGE)}" in stdout and f"LOCAL {len(SMALL)}" in stdout, stdout
    assert not (workdir / large_lfn).exists()  # never copied
    metrics = devserver.final_update(pandaid)["jobMetrics"]
    assert metrics["nDirectAccessInputs"] == "1" and metrics["nCopiedInputs"] == "1"
    log = run.log_text()
    assert f"input {large_lfn} ({len(LARGE)} bytes): direct access" in log
    assert f"input {small_lfn} ({len(SMALL)} bytes, below the direct access size 10000): copied" in log


def test_without_direct_io_support_everything_is_copied(devserver, start_pilot, xrd_queue):
    devserver.set_queuedata("DEV_QUEUE", {"direct_access_lan": True, "direct_access_min_size": 10_000})
    job = _job(xrd_queue)
    job.pop("transferType")  # a production job that does not declare direct I/O
    pandaid, _, run = run_job(devserver, start_pilot, job, storage_env())
    stdout = (next(run.main_dir().glob("PanDA_Pilot-*")) / "payload.stdout").read_text()
    assert "REMOTE" not in stdout  # no catalogue: nothing is read remotely
    assert "direct access, the payload reads" not in run.log_text()
    metrics = devserver.final_update(pandaid)["jobMetrics"]
    assert metrics["nDirectAccessInputs"] == "0" and metrics["nCopiedInputs"] == "2"
