"""The event-service job of test_es_jobs run in Harvester file mode (PUSH, ``-z``).

The test plays Harvester: it puts the job file in the access point, answers each
``worker_requestevents.json`` with ``JobsEventRanges.json`` (ranges it takes from the dev server, as
Harvester takes them from PanDA) and forwards what the pilot writes to ``worker_updateevents.json``
to the dev server's updateEventRanges. The pilot's code path is the same as with the server: only
the communicator backend differs.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
import urllib.request
from pathlib import Path

from pilot.devserver.protocol import job_reply

from .esjobs import ES_CONFIG, es_job
from .test_es_jobs import check_finished_ranges

HARVESTER_CONFIG = "\n[Harvester]\njob_poll_interval: 0.1\nheartbeat_interval: 1\n"


def panda_call(devserver, method: str, **fields) -> dict:
    data = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(f"{devserver.url}/server/panda/{method}", data=data,
                                 headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - local dev server
        return json.loads(resp.read())


class FakeHarvester:
    """Harvester's event feeder and event updater for one access point (a polling test thread)."""

    def __init__(self, devserver, ap: Path) -> None:
        self.devserver = devserver
        self.ap = ap
        self.stop = threading.Event()
        self.requests: list = []
        self.updates: list = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.feed()
            self.forward()
        self.forward()

    def feed(self) -> None:
        request = self.ap / "worker_requestevents.json"
        if not request.exists():
            return
        asked = json.loads(request.read_text())
        self.requests.append(asked)
        answer = {}
        for pandaid, spec in asked.items():
            reply = panda_call(self.devserver, "getEventRanges", pandaID=spec["pandaID"], jobsetID=spec["jobsetID"],
                               taskID=spec["taskID"], nRanges=spec["nRanges"])
            answer[pandaid] = reply["eventRanges"]
        (self.ap / "JobsEventRanges.json").write_text(json.dumps(answer))
        os.remove(request)

    def forward(self) -> None:
        path = self.ap / "worker_updateevents.json"
        if not path.exists():
            return
        read = Path(str(path) + ".read")
        os.rename(path, read)
        for _pandaid, entries in json.loads(read.read_text()).items():
            self.updates.extend(entries)
            panda_call(self.devserver, "updateEventRanges", version=0, eventRanges=json.dumps(entries))
        os.remove(read)


def test_es_job_in_harvester_file_mode(devserver, start_pilot, tmp_path):
    job, ids = es_job(devserver.storage_dir, 8, "--fail es-7-4")
    pandaid = devserver.submit(job)
    ap = tmp_path / "access_point"
    ap.mkdir()
    params = job_reply(job, pandaid)
    params.pop("StatusCode", None)
    (ap / "pandaJobData.out").write_text(json.dumps({pandaid: params}))
    harvester = FakeHarvester(devserver, ap)
    harvester.thread.start()
    run = start_pilot(extra=["--harvester-workdir", str(ap), "--harvester-submit-mode", "PUSH", "-z"],
                      config_text=ES_CONFIG + HARVESTER_CONFIG)
    try:
        assert run.wait(180) == 0, run.log_text()[-4000:]
    finally:
        harvester.stop.set()
        harvester.thread.join(10)
    attributes = json.loads((ap / "worker_attributes.json").read_text())
    assert attributes["jobStatus"] == "finished", run.log_text()[-3000:]
    # the ranges went through the Harvester files only: the pilot never called the server for them
    assert len(devserver.requests("getEventRanges")) == len(harvester.requests)
    assert all(spec["nRanges"] >= 1 and spec["jobsetID"] == "7" for req in harvester.requests for spec in req.values())
    ranges = {r["range_id"]: r for r in devserver.event_ranges(pandaid)}
    assert ranges["es-7-4"]["status"] == "failed" and ranges["es-7-4"]["n_updates"] == 1
    check_finished_ranges(devserver, [r for rid, r in ranges.items() if rid != "es-7-4"])
    assert sorted(u["eventRangeID"] for u in harvester.updates) == sorted(ids)
    assert not devserver.requests("updateJob") and not devserver.requests("getJob")
