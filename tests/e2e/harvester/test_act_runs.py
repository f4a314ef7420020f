"""aCT / NorduGrid mode (-z, no Harvester): the job from a file, updates in heartbeat.json, outputs in output.list."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from urllib.parse import urlencode

from pilot.devserver.samples import rucio_path, sample_job

from .conftest import harvester_params, server_job_calls

ARC_ENDPOINT = "davs://act.example.org:443"
ARC_PATH = "/atlas/rucio"


def adler32(path: Path) -> str:
    return f"{zlib.adler32(path.read_bytes()) & 0xffffffff:08x}"


def act_storage(devserver) -> None:
    """An output storage the worker node cannot write to (ARC uploads): a davs:// endpoint."""
    protocol = {"endpoint": ARC_ENDPOINT, "path": ARC_PATH, "flavour": "WEBDAV", "id": 2}
    activities = ("write_lan", "write_wan", "pw", "pl", "w", "read_wan")
    devserver.set_storagedata("ACT_DISK", {
        "name": "ACT_DISK", "id": 2, "type": "DISK", "token": "ATLASDATADISK", "is_deterministic": True,
        "state": "ACTIVE",
        "site": "DEV_SITE", "rc_site": "DEV_SITE", "is_tape": False, "resource": {},
        "arprotocols": {a: [dict(protocol)] for a in activities},
        "rprotocols": {"2": {**protocol, "activities": [[a, 1] for a in activities], "settings": {}}},
    }, merge=False)
    # mv's own scheme list is file:// only; an aCT queue names the remote schemes ARC uploads to
    devserver.set_queuedata("DEV_QUEUE", {"astorages": {"pr": ["LOCAL_DISK"], "read_lan": ["LOCAL_DISK"],
                                                        "pw": ["ACT_DISK"], "pl": ["ACT_DISK"],
                                                        "write_lan": ["ACT_DISK"]},
                                          "acopytools_schemas": {"pw": ["davs", "file"], "pl": ["davs", "file"]}})


def test_act_job_through_heartbeat_json_and_output_list(devserver, run_pilot, tmp_path):
    act_storage(devserver)
    session = tmp_path / "session"  # ARC's session dir: the pilot runs in it (no -a)
    session.mkdir()
    job = sample_job(devserver.storage_dir, pandaid=9001, overrides={"ddmEndPointOut": "ACT_DISK,ACT_DISK"})
    (session / "pandaJobData.out").write_text(urlencode(harvester_params(job, 9001)))
    run = run_pilot(["-z"], workdir=session, use_a=False)
    assert run.wait(120) == 0, run.log_text()[-4000:]

    heartbeat = json.loads((session / "heartbeat.json").read_text())
    assert heartbeat["jobId"] == "9001" and heartbeat["state"] == "finished"
    assert int(heartbeat["pilotErrorCode"]) == 0 and "pilotTiming" in heartbeat
    out_lfn = job["outFiles"].split(",")[0]
    xml = json.loads(heartbeat["xml"])
    assert set(xml) == {out_lfn, job["logFile"]}

    # output.list: "<lfn> <ARC URL>", the SURL with the space token and the checksum for ARC
    lines = dict(line.split(" ", 1) for line in (session / "output.list").read_text().splitlines())
    assert set(lines) == {out_lfn, job["logFile"]}
    host, port = ARC_ENDPOINT.rsplit(":", 1)
    for lfn, url in lines.items():
        scope = job["scopeLog"] if lfn == job["logFile"] else job["scopeOut"].split(",")[0]
        surl = f"{ARC_ENDPOINT}{ARC_PATH}/{rucio_path(scope, lfn)}"
        checksum = adler32(session / lfn)
        assert url == (f"{host}:{port};autodir=no;spacetoken=ATLASDATADISK{ARC_PATH}/{rucio_path(scope, lfn)}"
                       f":checksumtype=adler32:checksumvalue={checksum}")
        assert (session / lfn).is_file(), f"{lfn} is not in the session dir for ARC"
        assert xml[lfn]["surl"] == surl and xml[lfn]["adler32"] == checksum  # where ARC puts it
    assert int((session / out_lfn).read_text().split()[0]) == int(job["fsize"])
    assert not (session / "pandaJobData.out").exists()
    assert server_job_calls(devserver) == []
    assert not (session / "worker_attributes.json").exists() and not (session / "kill_worker.json").exists()


def test_act_mode_without_a_job_file_asks_nobody(devserver, run_pilot, tmp_path):
    devserver.submit(sample_job(devserver.storage_dir))
    run = run_pilot(["-z", "-x", "1"], workdir=tmp_path / "session", use_a=False)
    assert run.wait(60) == 0, run.log_text()[-3000:]
    assert server_job_calls(devserver) == []
    assert not (tmp_path / "session" / "heartbeat.json").exists()
