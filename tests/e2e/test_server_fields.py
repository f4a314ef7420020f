"""A whole pilot run against the dev server: the fields of every update as the PanDA server parses them."""

from __future__ import annotations

import os
from datetime import datetime

import pytest

from pilot.devserver.samples import sample_job

SUBSTATES = ("setup", "stagein", "running", "stageout")


@pytest.mark.parametrize("api", ["legacy", "rest"])
def test_every_update_carries_substate_host_times_and_mean_core_count(devserver, start_pilot, api):
    # long enough for the job monitor to sample the payload's cores and send a heartbeat (5 s here)
    job = sample_job(devserver.storage_dir, overrides={"jobPars": "-c 'sleep 8; cat dev.input.*txt | wc -c > "
                                                                  "dev.output.txt'"})
    job["jobPars"] = job["jobPars"].replace("dev.output.txt", job["outFiles"].split(",")[0])
    pandaid = devserver.submit(job)
    run = start_pilot(config_text=f"\n[Pilot]\nserver_api: {api}\n")
    assert run.wait(120) == 0, run.log_text()[-3000:]
    assert devserver.wait_final(pandaid, timeout=30)["state"] == "finished"
    updates = [u["fields"] for u in devserver.updates(pandaid)]
    assert len(updates) >= 3
    assert all(u["jobSubStatus"] in SUBSTATES for u in updates)
    seen = [u["jobSubStatus"] for u in updates]
    assert seen[0] == "stagein" and "running" in seen and seen[-1] == "stageout"
    assert all(u["node"] == os.uname()[1] for u in updates)  # modificationHost as Pilot 2 sends it
    for u in updates:
        datetime.strptime(str(u["startTime"]), "%Y-%m-%d %H:%M:%S")  # the only form both servers parse
    datetime.strptime(str(updates[-1]["endTime"]), "%Y-%m-%d %H:%M:%S")
    assert float(updates[-1]["meanCoreCount"]) >= 1
    methods = {r["method"] for r in devserver.requests()}
    assert ("update_job" in methods) == (api == "rest") and ("updateJob" in methods) == (api == "legacy")
    # the monitoring loop says where the job is
    assert "sub-state running" in run.log_text()
