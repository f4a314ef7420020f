"""A whole pilot job on a queue with ``container_type: bwrap:middleware``: xrdcp runs in bubblewrap."""

from __future__ import annotations

import shutil

import pytest

from pilot.copytool.common import deterministic_path
from pilot.devserver.samples import sample_job

from .conftest import require_servers, storage_env
from .test_copytool_jobs import INPUTS, QUEUE, check_outputs, on_endpoint, run_job, storage_entry, use_tool

pytestmark = pytest.mark.storage


def test_xrdcp_job_in_the_middleware_container(devserver, start_pilot, storage_area):
    require_servers("xrootd", "rucio")
    assert shutil.which("bwrap"), "bubblewrap must be installed (scripts/install-test-deps.sh)"
    rel, area = storage_area
    proto = {"endpoint": "root://127.0.0.1:1094", "path": f"//{rel}/", "flavour": "XROOTD", "id": 1}
    use_tool(devserver, "xrdcp", "E2E_XRD", storage_entry("E2E_XRD", [proto]))
    devserver.set_queuedata(QUEUE, {"container_type": "bwrap:middleware"})
    job = on_endpoint(sample_job(area, contents=INPUTS), "E2E_XRD")
    _, xml, run = run_job(devserver, start_pilot, job, storage_env())
    check_outputs(job, xml, lambda lfn: area / deterministic_path("dev", lfn))
    log = run.log_text()
    # inputs (one bulk command), output and log: every xrdcp went through bubblewrap, none ran on the host
    assert log.count("transfer command runs in the middleware container (bwrap)") >= 3, log[-4000:]
    assert "bwrap --ro-bind / /" in log and "running: xrdcp" not in log
