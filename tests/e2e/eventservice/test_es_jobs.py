"""Whole pilot runs of event-service jobs against the dev server, with the project's test payload.

Ranges come from getEventRanges, reach the payload over the channel, their outputs are packed into
premerge tarballs on the dev server's LOCAL_DISK storage (scope ``transient``) and every range's
state is recorded once through updateEventRanges.
"""

from __future__ import annotations

import json
import os
import signal
import time

from pilot.common.errorcodes import ErrorCodes

from tests.payload_procs import wait_gone

from ..conftest import wait_for_file
from .esjobs import ES_CONFIG, adler32_bytes, es_job, merge_job, storage_file, tar_members


def check_finished_ranges(devserver, ranges: list, prefix: str = "testpayload.out.") -> dict:
    """Every range finished, recorded once, its output in a premerge tarball on storage; lfn -> members."""
    tarballs: dict = {}
    for item in ranges:
        assert item["status"] == "finished", item
        assert item["n_updates"] == 1, item
        record = item["last_update"]["zipFile"]
        assert record["pathConvention"] == 1000 and record["objstoreID"] == 1
        assert record["lfn"].startswith("EventService_premerge_") and record["lfn"].endswith(".tar")
        if record["lfn"] not in tarballs:
            path = storage_file(devserver.storage_dir, "transient", record["lfn"])
            assert path.exists(), f"premerge tarball not on storage: {path}"
            data = path.read_bytes()
            assert record["adler32"] == adler32_bytes(data) and record["fsize"] == len(data)
            tarballs[record["lfn"]] = tar_members(path)
        members = tarballs[record["lfn"]]
        name = f"{prefix}{item['range_id']}"
        assert name in members, (name, sorted(members))
        start, last = item["definition"]["startEvent"], item["definition"]["lastEvent"]
        lines = members[name].decode().splitlines()
        assert [int(line.split()[3]) for line in lines] == list(range(start, last + 1))
    return tarballs


def test_es_job_with_20_ranges(devserver, start_pilot):
    devserver.set_queuedata("DEV_QUEUE", {"zip_time_gap": 1})
    job, ids = es_job(devserver.storage_dir, 20, "--delay 0.05")
    pandaid = devserver.submit(job)
    run = start_pilot(config_text=ES_CONFIG)
    assert run.wait(180) == 0, run.log_text()[-4000:]
    record = devserver.wait_final(pandaid, timeout=30)
    assert record["state"] == "finished", run.log_text()[-4000:]
    final = record["final_update"]
    assert int(final["nEvents"]) == 100
    ranges = devserver.event_ranges(pandaid)
    assert [r["range_id"] for r in ranges] == ids
    tarballs = check_finished_ranges(devserver, ranges)
    # the payload read the staged-in input of the ranges
    some = next(iter(tarballs.values()))
    assert f"adler32 {job['checksum'][3:]}" in next(iter(some.values())).decode()
    updates = devserver.requests("updateEventRanges")
    assert updates and all(u["fields"]["version"] == "1" for u in updates)
    # stage-out leaves at most every zip_time_gap seconds: several tarballs for a 2+ s payload
    assert 1 < len(tarballs) < 20
    # the ES job's own outputs are not staged out (only the log): its ranges carry the outputs
    xml = json.loads(devserver.updates(pandaid)[-1]["fields"]["xml"])
    assert set(xml) == {job["logFile"]}
    requests = devserver.requests("getEventRanges")
    assert all(r["fields"]["pandaID"] == str(pandaid) and r["fields"]["jobsetID"] == "7" for r in requests)


def test_es_payload_fails_one_range_and_continues(devserver, start_pilot):
    job, ids = es_job(devserver.storage_dir, 6, "--fail es-7-3 --fatal es-7-5")
    pandaid = devserver.submit(job)
    run = start_pilot(config_text=ES_CONFIG)
    run.wait(120)
    record = devserver.wait_final(pandaid, timeout=30)
    assert record["state"] == "finished", run.log_text()[-4000:]
    ranges = {r["range_id"]: r for r in devserver.event_ranges(pandaid)}
    assert ranges["es-7-3"]["status"] == "failed" and ranges["es-7-5"]["status"] == "fatal"
    for rid in ("es-7-3", "es-7-5"):
        assert ranges[rid]["n_updates"] == 1
        assert ranges[rid]["last_update"]["errorCode"] == ErrorCodes.UNKNOWNPAYLOADFAILURE
    check_finished_ranges(devserver, [ranges[rid] for rid in ids if rid not in ("es-7-3", "es-7-5")])
    versions = {u["fields"]["version"] for u in devserver.requests("updateEventRanges")}
    assert versions == {"0", "1"}


def test_sigterm_leaves_unprocessed_ranges_to_the_next_pilot(devserver, start_pilot, tmp_path):
    job, ids = es_job(devserver.storage_dir, 12, f"--delay 0.3 --pid-file {tmp_path / 'payload.pid'}")
    pandaid = devserver.submit(job)
    devserver.set_queuedata("DEV_QUEUE", {"zip_time_gap": 600})  # after the first batch, outputs wait
    run = start_pilot(config_text=ES_CONFIG)
    assert wait_for_file(tmp_path / "payload.pid", 60), run.log_text()[-3000:]
    payload_pid = int((tmp_path / "payload.pid").read_text())  # its PID in its own namespace
    jobdir = run.main_dir() / f"PanDA_Pilot-{pandaid}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(jobdir.glob("testpayload.out.*"))) < 3:
        time.sleep(0.05)
    os.kill(run.proc.pid, signal.SIGTERM)
    assert run.wait(90) == 143
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed" and int(final["pilotErrorCode"]) == ErrorCodes.SIGTERM
    assert wait_gone(payload_pid, "testpayload", cwd=str(jobdir))
    first = {r["range_id"]: r for r in devserver.event_ranges(pandaid)}
    done = [rid for rid, r in first.items() if r["status"] == "finished"]
    # the first batch left at once; the outputs still waiting for the gap were staged out at the kill
    assert 3 <= len(done) < len(ids), first
    assert len({first[rid]["last_update"]["zipFile"]["lfn"] for rid in done}) >= 2
    # the rest is back in the pool, never reported
    assert all(r["status"] == "ready" and r["n_updates"] == 0 for rid, r in first.items() if rid not in done)
    check_finished_ranges(devserver, [first[rid] for rid in done])

    # another pilot runs another job of the same jobset and completes the ranges
    second, _ = es_job(devserver.storage_dir, 0, "", ranges=False)
    second_id = devserver.submit(second)
    run2 = start_pilot(config_text=ES_CONFIG)
    assert run2.wait(180) == 0, run2.log_text()[-4000:]
    assert devserver.wait_final(second_id, timeout=30)["state"] == "finished"
    after = devserver.event_ranges(pandaid)
    check_finished_ranges(devserver, after)
    assert {r["range_id"] for r in after} == set(ids)


def test_es_merge_job_merges_premerge_outputs(devserver, start_pilot):
    job, ids = es_job(devserver.storage_dir, 4, "")
    pandaid = devserver.submit(job)
    run = start_pilot(config_text=ES_CONFIG)
    run.wait(120)
    assert devserver.wait_final(pandaid, timeout=30)["state"] == "finished", run.log_text()[-3000:]
    ranges = devserver.event_ranges(pandaid)
    premerge = {}
    for item in ranges:
        lfn = item["last_update"]["zipFile"]["lfn"]
        data = storage_file(devserver.storage_dir, "transient", lfn).read_bytes()
        premerge[lfn] = (lfn, len(data), adler32_bytes(data))
    members = [f"testpayload.out.{rid}" for rid in ids]
    merge = merge_job(devserver.storage_dir, list(premerge.values()), members)
    merge_id = devserver.submit(merge)
    run2 = start_pilot(config_text=ES_CONFIG)
    run2.wait(120)
    record = devserver.wait_final(merge_id, timeout=30)
    assert record["state"] == "finished", run2.log_text()[-4000:]
    out = merge["outFiles"].split(",")[0]
    merged = storage_file(devserver.storage_dir, merge["scopeOut"].split(",")[0], out).read_text().splitlines()
    assert len(merged) == 4 * 5
    assert [int(line.split()[3]) for line in merged] == list(range(1, 21))
    xml = json.loads(devserver.updates(merge_id)[-1]["fields"]["xml"])
    assert xml[out]["adler32"] == adler32_bytes(
        storage_file(devserver.storage_dir, merge["scopeOut"].split(",")[0], out).read_bytes())


def test_es_job_through_the_rest_api(devserver, start_pilot):
    job, ids = es_job(devserver.storage_dir, 5, "--fail es-7-2")
    pandaid = devserver.submit(job)
    run = start_pilot(config_text=ES_CONFIG + "\n[Pilot]\nserver_api: rest\nserver_api_fallback: false\n")
    run.wait(120)
    record = devserver.wait_final(pandaid, timeout=30)
    assert record["state"] == "finished", run.log_text()[-4000:]
    ranges = {r["range_id"]: r for r in devserver.event_ranges(pandaid)}
    assert ranges["es-7-2"]["status"] == "failed" and ranges["es-7-2"]["n_updates"] == 1
    check_finished_ranges(devserver, [r for rid, r in ranges.items() if rid != "es-7-2"])
    assert devserver.requests("acquire_event_ranges") and devserver.requests("update_event_ranges")
    assert not devserver.requests("getEventRanges") and not devserver.requests("updateEventRanges")


def test_payload_ignoring_no_more_events_is_stopped(devserver, start_pilot):
    job, ids = es_job(devserver.storage_dir, 3, "--ignore-no-more-events")
    pandaid = devserver.submit(job)
    run = start_pilot(config_text="\n[Payload]\nes_exit_wait: 2\n")
    started = time.monotonic()
    run.wait(120)
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed" and int(final["pilotErrorCode"]) == ErrorCodes.ESRECOVERABLE
    assert time.monotonic() - started < 60
    check_finished_ranges(devserver, devserver.event_ranges(pandaid))


def test_es_job_without_ranges_fails_with_no_events(devserver, start_pilot):
    job, _ = es_job(devserver.storage_dir, 0, "", jobset="99", ranges=False)
    pandaid = devserver.submit(job)
    run = start_pilot(config_text=ES_CONFIG)
    run.wait(120)
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed" and int(final["pilotErrorCode"]) == ErrorCodes.ESNOEVENTS
    assert len(devserver.requests("getEventRanges")) == 1


def test_es_executor_type_option(devserver, start_pilot):
    job, _ = es_job(devserver.storage_dir, 2, "")
    pandaid = devserver.submit(job)
    run = start_pilot(extra=["--es-executor-type", "mpi"], config_text=ES_CONFIG)
    run.wait(120)
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed" and int(final["pilotErrorCode"]) == ErrorCodes.NOTIMPLEMENTED
    assert "mpi" in final["pilotErrorDiag"]
    assert not devserver.requests("getEventRanges")
