"""Whole pilot runs of ES jobs whose payload behaves as AthenaMP does on the yampl channel.

The payload (``athenamp_fake.py``, a real process with a pyzmq DEALER) learns the channel from the
``--preExec`` the pilot adds to its arguments, parses ranges by splitting on ``,`` and ``:``, reports
its output files and stops only on an exact ``No more events``. Every case runs with the pilot's
pyzmq ROUTER and with its standard-library ROUTER (``[Payload] es_channel``).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from pilot.common.errorcodes import ErrorCodes

from ..conftest import pilot_python
from .esjobs import ES_CONFIG, es_job, storage_file
from .test_es_jobs import check_finished_ranges

pytest.importorskip("zmq")

FAKE = Path(__file__).resolve().parent / "athenamp_fake.py"
#: the pilot may run on a bare interpreter (e.g. Python 3.9 without pyzmq, PILOT_TEST_PYTHON): then only
#: the stdlib ROUTER serves, the payload still speaks through libzmq
PILOT_HAS_PYZMQ = subprocess.run([pilot_python(), "-c", "import zmq"], capture_output=True).returncode == 0
BACKENDS = (["pyzmq"] if PILOT_HAS_PYZMQ else []) + ["stdlib"]
LOG_LINE = {"pyzmq": "ROUTER, pyzmq", "stdlib": "ROUTER, standard-library ZMTP"}
LOG_LINE["auto"] = LOG_LINE["pyzmq" if PILOT_HAS_PYZMQ else "stdlib"]


def athenamp_job(storage_dir: str, nranges: int, args: str = "", broken: bool = False,
                 payload: str = f"{sys.executable} {FAKE}") -> tuple:
    """The sample ES job run by the fake AthenaMP; ``broken`` adds a range without GUID and a reversed one."""
    job, ids = es_job(storage_dir, nranges, jobset="8", tag="a")
    # bash hands the pilot's appended --preExec to the payload as "$@"
    job["jobPars"] = f"-c '{payload} {args} \"$@\"' athena"
    if broken:
        bad = dict(job["_eventRanges"][0], eventRangeID="esa-8-noguid")
        del bad["GUID"]
        reversed_range = dict(job["_eventRanges"][0], eventRangeID="esa-8-reversed", startEvent=9, lastEvent=3)
        job["_eventRanges"] = job["_eventRanges"][:2] + [bad, reversed_range] + job["_eventRanges"][2:]
    return job, ids


@pytest.fixture
def payload_outside_tmp():
    """The fake AthenaMP and its pyzmq where a container with a private /tmp still sees them.

    The checkout and its venv may lie under /tmp (CI clones anywhere), which bubblewrap's ``--tmpfs /tmp``
    hides from the payload: the script and the zmq package are copied to /var/tmp and run by the
    interpreter the venv was made from.
    """
    import zmq

    site = Path(zmq.__file__).resolve().parents[1]
    place = Path(tempfile.mkdtemp(prefix="pilot-athenamp-", dir="/var/tmp"))
    try:
        os.chmod(place, 0o755)  # a root pilot may run the payload as [Payload] payload_user
        shutil.copy2(FAKE, place / FAKE.name)
        for name in ("zmq", "pyzmq.libs"):
            if (site / name).is_dir():
                shutil.copytree(site / name, place / name)
        python = os.path.realpath(sys.executable)
        assert not python.startswith("/tmp/"), f"the test's interpreter {python} lies under /tmp"
        yield f"env PYTHONPATH={place} {python} {place / FAKE.name}"
    finally:
        shutil.rmtree(place, ignore_errors=True)


def config(backend: str, extra: str = "") -> str:
    return ES_CONFIG + f"es_channel: {backend}\n" + extra


@pytest.mark.parametrize("backend", BACKENDS + ["auto"])
def test_athenamp_job_with_malformed_and_failed_ranges(backend, devserver, start_pilot, tmp_path):
    devserver.set_queuedata("DEV_QUEUE", {"zip_time_gap": 1})
    log = tmp_path / "athenamp_messages.jsonl"
    job, ids = athenamp_job(devserver.storage_dir, 8, f"--fail esa-8-4 --connections 2 --log {log}", broken=True)
    pandaid = devserver.submit(job)
    run = start_pilot(config_text=config(backend))
    assert run.wait(180) == 0, run.log_text()[-4000:]
    record = devserver.wait_final(pandaid, timeout=30)
    text = run.log_text()
    assert record["state"] == "finished", text[-4000:]
    assert LOG_LINE[backend] in text and "ipc:///tmp/zmq_EventService_EventRanges_" in text
    ranges = {r["range_id"]: r for r in devserver.event_ranges(pandaid)}
    # AthenaMP's parse errors and process errors: failed, Pilot 2's errorCode, reported once
    for rid in ("esa-8-noguid", "esa-8-reversed", "esa-8-4"):
        assert ranges[rid]["status"] == "failed" and ranges[rid]["n_updates"] == 1, ranges[rid]
        assert ranges[rid]["last_update"]["errorCode"] == ErrorCodes.UNKNOWNPAYLOADFAILURE
    good = [ranges[rid] for rid in ids if rid != "esa-8-4"]
    check_finished_ranges(devserver, good, prefix="athenamp.out.")
    assert int(record["final_update"]["nEvents"]) == 5 * len(good)
    # what the payload received: one JSON range per request, then exactly "No more events" per connection
    received = [json.loads(line) for line in log.read_text().splitlines()]
    assert received.count("No more events") == 2
    assert not any(item.endswith("\0") for item in received)
    ranges_sent = [json.loads(item) for item in received if item != "No more events"]
    assert all(isinstance(item, list) and len(item) == 1 for item in ranges_sent)
    assert sorted(item[0]["eventRangeID"] for item in ranges_sent) == sorted(ranges)


@pytest.mark.parametrize("backend", BACKENDS)
def test_athenamp_crashing_mid_range(backend, devserver, start_pilot):
    job, ids = athenamp_job(devserver.storage_dir, 6, "--crash-at 3")
    pandaid = devserver.submit(job)
    run = start_pilot(config_text=config(backend))
    run.wait(180)
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed", run.log_text()[-4000:]
    assert int(final["pilotErrorCode"]) == ErrorCodes.PAYLOADEXECUTIONFAILURE and "signal 9" in final["pilotErrorDiag"]
    ranges = {r["range_id"]: r for r in devserver.event_ranges(pandaid)}
    # the two ranges done before the crash are on storage and reported; the one in flight is not
    check_finished_ranges(devserver, [ranges[ids[0]], ranges[ids[1]]], prefix="athenamp.out.")
    assert ranges[ids[2]]["n_updates"] == 0 and ranges[ids[2]]["status"] != "finished"
    assert all(ranges[rid]["n_updates"] == 0 for rid in ids[3:])


@pytest.mark.parametrize("backend", BACKENDS)
def test_athenamp_that_never_asks_is_stopped(backend, devserver, start_pilot):
    job, ids = athenamp_job(devserver.storage_dir, 2, "--never-ready")
    pandaid = devserver.submit(job)
    started = time.monotonic()
    run = start_pilot(config_text=config(backend, "es_ready_timeout: 3\n"))
    run.wait(120)
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert time.monotonic() - started < 90
    assert final["state"] == "failed" and int(final["pilotErrorCode"]) == ErrorCodes.ESRECOVERABLE, final
    assert "Ready for events" in final["pilotErrorDiag"]
    assert all(r["n_updates"] == 0 for r in devserver.event_ranges(pandaid))
    assert not devserver.requests("getEventRanges") and not devserver.requests("acquire_event_ranges")


@pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap is not installed")
@pytest.mark.parametrize("backend", BACKENDS)
def test_athenamp_in_a_container_with_a_private_tmp(backend, devserver, start_pilot, payload_outside_tmp):
    """bubblewrap gives the payload its own /tmp: the channel's socket file is bound into it."""
    job, ids = athenamp_job(devserver.storage_dir, 3, payload=payload_outside_tmp)
    job["jobPars"] += " --overwriteQueueData={'container_type':'bwrap:pilot'}"
    pandaid = devserver.submit(job)
    run = start_pilot(config_text=config(backend, "es_ready_timeout: 30\n"))
    assert run.wait(180) == 0, run.log_text()[-4000:]
    record = devserver.wait_final(pandaid, timeout=30)
    text = run.log_text()
    assert record["state"] == "finished", text[-4000:]
    assert "payload runs in bwrap" in text and "channel socket /tmp/zmq_EventService_EventRanges_" in text
    check_finished_ranges(devserver, devserver.event_ranges(pandaid), prefix="athenamp.out.")


@pytest.mark.skipif(os.geteuid() != 0, reason="a pilot that is not root runs its payload as itself")
@pytest.mark.parametrize("backend", BACKENDS)
def test_payload_running_as_the_payload_user_reaches_the_channel(backend, devserver, start_pilot):
    """A root pilot runs the payload as [Payload] payload_user (nobody): the socket file is handed to it."""
    nobody = pwd.getpwnam("nobody").pw_uid
    top = Path(tempfile.mkdtemp(prefix="zmq-es-user-", dir="/tmp"))  # reachable by nobody, unlike pytest's dirs
    top.chmod(0o755)
    try:
        job, ids = es_job(devserver.storage_dir, 3, "--workers 2", jobset="9", tag="u")
        # the system interpreter (nobody cannot run the test venv's), the stdlib DEALER of the test payload
        job["jobPars"] = job["jobPars"].replace(sys.executable, "/usr/bin/python3")
        pandaid = devserver.submit(job)
        run = start_pilot(config_text=config(backend), workdir=top / "pilot")
        assert run.wait(180) == 0, run.log_text()[-4000:]
        record = devserver.wait_final(pandaid, timeout=30)
        text = run.log_text()
        assert record["state"] == "finished", text[-4000:]
        assert f"given to uid {nobody}" in text and "not reachable by uid" not in text
        ranges = devserver.event_ranges(pandaid)
        check_finished_ranges(devserver, ranges)
        lfn = ranges[0]["last_update"]["zipFile"]["lfn"]
        with tarfile.open(storage_file(devserver.storage_dir, "transient", lfn)) as tar:
            assert {member.uid for member in tar.getmembers()} == {nobody}  # written by the payload as nobody
    finally:
        shutil.rmtree(top, ignore_errors=True)
