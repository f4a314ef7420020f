"""Integration tests: a dev server subprocess spoken to over real HTTP and HTTPS sockets."""

import gzip
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from pilot.devserver.control import DevServer
from pilot.devserver.samples import sample_job, storage_path

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    state = tmp_path_factory.mktemp("devserver")
    with DevServer(state, https=True) as srv:
        yield srv


@pytest.fixture(autouse=True)
def clean(server):
    server.reset()
    yield


@pytest.fixture(scope="module")
def tls(server):
    return ssl.create_default_context(cafile=server.cacert)


def send(url, form=None, data=None, headers=None, context=None, timeout=10.0):
    """POST (or GET when there is no body); returns (status, body bytes)."""
    body = urlencode(form).encode() if form is not None else data
    req = urllib.request.Request(url, data=body, headers={"Accept": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, context=context, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def panda(base, method, context=None, **form):
    status, body = send(f"{base}/server/panda/{method}", form=form, context=context)
    assert status == 200, body
    return json.loads(body)


def cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pilot.devserver", *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_state_file_and_tls_material(server):
    info = json.loads((Path(server.config.state_dir) / "devserver.json").read_text())
    assert info == server.info
    assert info["pid"] == server.pid
    assert info["http_url"].startswith("http://127.0.0.1:") and info["https_url"].startswith("https://127.0.0.1:")
    for key in ("cacert", "certdir", "proxy", "db"):
        assert Path(info[key]).exists(), key
    assert any(name.endswith(".0") for name in os.listdir(info["certdir"]))


def test_https_is_verified_with_the_ca_file_and_the_hash_directory(server, tls):
    assert panda(server.https_url, "getJob", context=tls, siteName="DEV_QUEUE")["StatusCode"] == 20
    by_dir = ssl.create_default_context(capath=server.certdir)
    localhost = server.https_url.replace("127.0.0.1", "localhost")
    assert panda(localhost, "getJob", context=by_dir, siteName="DEV_QUEUE")["StatusCode"] == 20
    untrusted = ssl.create_default_context(cafile=None, capath=None, cadata=None)
    with pytest.raises(urllib.error.URLError) as err:
        send(f"{server.https_url}/server/panda/getJob", form={"siteName": "X"}, context=untrusted)
    assert isinstance(err.value.reason, ssl.SSLCertVerificationError)


def test_client_proxy_file_works_as_pilot_credential(server):
    # Pilot 2 (curl) passes X509_USER_PROXY as --cert/--key/--cacert, Pilot 3 loads it as its cert chain
    proxy = server.info["proxy"]
    context = ssl.create_default_context(cafile=proxy)
    context.load_cert_chain(certfile=proxy, keyfile=proxy)
    assert panda(server.https_url, "getProxy", context=context)["userProxy"] == Path(proxy).read_text()


def test_full_job_cycle_over_https(server, tls):
    job = sample_job(server.storage_dir, queue="DEV_QUEUE")
    pandaid = server.submit(job)
    assert storage_path(server.storage_dir, "dev", job["inFiles"]).exists()
    base = server.https_url
    got = panda(base, "getJob", context=tls, siteName="DEV_QUEUE", computingElement="DEV_QUEUE",
                prodSourceLabel="managed", node="wn1", diskSpace="1000", mem="2000", cpu="2000")
    assert got["StatusCode"] == 0 and got["PandaID"] == str(pandaid)
    assert got["inFiles"] == job["inFiles"] and got["checksum"] == job["checksum"]
    assert panda(base, "getJob", context=tls, siteName="DEV_QUEUE")["StatusCode"] == 20
    assert server.job(pandaid)["state"] == "sent"
    server.set_command(pandaid, "debug")
    assert panda(base, "updateJob", context=tls, jobId=pandaid, state="starting")["command"] == "debug"
    assert panda(base, "updateJob", context=tls, jobId=pandaid, state="running")["command"] == "NULL"
    final = {"jobId": pandaid, "state": "finished", "pilotErrorCode": "0", "pilotErrorDiag": "",
             "transExitCode": "0", "exeErrorCode": "0", "cpuConsumptionTime": "3", "pilotTiming": "1|0|2|1|0",
             "jobMetrics": "nEvents=0", "xml": json.dumps({job["logFile"]: {"guid": job["logGUID"]}})}
    assert panda(base, "updateJob", context=tls, **final) == {"StatusCode": 0, "command": "NULL"}
    assert panda(base, "updateJob", context=tls, **final)["command"] == "alreadydone"
    record = server.wait_final(pandaid, timeout=5)
    assert record["final_state"] == "finished" and record["n_duplicates"] == 1
    final_update = server.final_update(pandaid)
    assert final_update["xml"][job["logFile"]]["guid"] == job["logGUID"]
    assert final_update["jobMetrics"] == {"nEvents": "0"}
    assert [u["state"] for u in server.updates(pandaid)] == ["starting", "running", "finished", "finished"]
    shown = cli("show", str(pandaid), "--state-dir", server.config.state_dir)
    assert shown.returncode == 0 and "state=finished" in shown.stdout and "[duplicate final]" in shown.stdout
    getjobs = server.requests("getJob")
    assert getjobs[0]["scheme"] == "https" and getjobs[0]["fields"]["node"] == "wn1"


def test_pilot3_style_gzip_json_body(server, tls):
    pandaid = server.submit({"jobPars": "x"})
    headers = {"Content-Type": "application/json"}
    body = gzip.compress(json.dumps({"siteName": "DEV_QUEUE", "computingElement": "DEV_QUEUE"}).encode())
    status, raw = send(f"{server.https_url}/server/panda/getJob", data=body, headers=headers, context=tls)
    assert status == 200 and json.loads(raw)["PandaID"] == str(pandaid)
    body = gzip.compress(json.dumps({"jobId": pandaid, "state": "failed", "pilotErrorCode": 1305}).encode())
    status, raw = send(f"{server.https_url}/server/panda/updateJob", data=body, headers=headers, context=tls)
    assert json.loads(raw) == {"StatusCode": 0, "command": "NULL"}
    assert server.final_update(pandaid)["pilotErrorCode"] == 1305


def test_other_panda_methods(server):
    base = server.url
    ranges = [{"eventRangeID": f"r{i}", "LFN": "E.root", "GUID": "G", "scope": "mc", "startEvent": i,
               "lastEvent": i} for i in range(3)]
    pandaid = server.submit({"jobPars": "x", "eventService": "True", "_eventRanges": ranges})
    got = panda(base, "getEventRanges", pandaID=pandaid, jobsetID="1", taskID="1", nRanges="2")
    assert [r["eventRangeID"] for r in got["eventRanges"]] == ["r0", "r1"]
    assert len(panda(base, "getEventRanges", pandaID=pandaid, nRanges="9")["eventRanges"]) == 1
    update = [{"eventRangeID": "r0", "eventStatus": "finished"}, {"eventRangeID": "r1", "eventStatus": "failed"}]
    assert panda(base, "updateEventRanges", version="0", eventRanges=json.dumps(update))["Returns"] == [True, True]
    assert {r["range_id"]: r["status"] for r in server.event_ranges(pandaid)} == {
        "r0": "finished", "r1": "failed", "r2": "assigned"}
    proxy = panda(base, "getProxy", role="atlas")
    assert proxy["StatusCode"] == 0 and "BEGIN CERTIFICATE" in proxy["userProxy"]
    server.set_settings(keypairs={"pub": "AK", "priv": "SK"})
    assert panda(base, "getKeyPair", publicKeyName="pub", privateKeyName="priv")["privateKey"] == "SK"
    job_list = json.dumps([{"jobId": pandaid, "state": "running"}])
    assert panda(base, "updateJobsInBulk", jobList=job_list)["Returns"][0]["StatusCode"] == 0
    assert panda(base, "getStatus", ids=str(pandaid)) == {"StatusCode": 0, "status": "running", "attemptNr": "1"}
    assert panda(base, "getResourceTypes")["StatusCode"] == 0
    assert [r["method"] for r in server.requests()][:2] == ["getEventRanges", "getEventRanges"]


def test_get_query_string_is_accepted(server):
    server.submit({"jobPars": "x"})
    status, body = send(f"{server.url}/server/panda/getJob?siteName=DEV_QUEUE")
    assert status == 200 and json.loads(body)["StatusCode"] == 0


def test_information_endpoints(server, tls):
    for base, ctx in ((server.url, None), (server.https_url, tls)):
        status, body = send(f"{base}/cache/schedconfig/DEV_QUEUE.all.json", context=ctx)
        queue = json.loads(body)
        assert status == 200 and queue["nickname"] == "DEV_QUEUE" and queue["state"] == "ACTIVE"
        _, body = send(f"{base}/api/atlas/pandaqueue/query/?json&pandaqueue[]=DEV_QUEUE", context=ctx)
        assert json.loads(body) == {"DEV_QUEUE": queue}
        _, body = send(f"{base}/api/atlas/ddmendpoint/query/?json&ddmendpoint[]=LOCAL_DISK", context=ctx)
        disk = json.loads(body)["LOCAL_DISK"]
        assert disk["arprotocols"]["write_lan"][0]["path"] == server.storage_dir
    for path in ("/cache/schedconfig/DEV_QUEUE.json", "/queuedata/DEV_QUEUE.json"):
        assert json.loads(send(server.url + path)[1])["nickname"] == "DEV_QUEUE"
    for path in ("/storagedata.json", "/cache/ddmendpoints.json", "/cache/schedconfig/pandaqueues.json"):
        assert send(server.url + path)[0] == 200
    assert send(f"{server.url}/cache/schedconfig/NOPE.all.json")[0] == 404
    server.set_queuedata("DEV_QUEUE", {"timefloor": 10})
    assert json.loads(send(f"{server.url}/queuedata/DEV_QUEUE.json")[1])["timefloor"] == 10


def test_traces_and_sinks(server):
    trace = {"eventType": "get_sm", "localSite": "LOCAL_DISK", "remoteSite": "LOCAL_DISK", "filename": "f"}
    status, body = send(f"{server.url}/traces/", data=json.dumps(trace).encode(),
                        headers={"Content-Type": "application/json"})
    assert (status, body) == (201, b"Created")
    send(f"{server.url}/traces", data=json.dumps([trace, trace]).encode())
    assert server.traces() == [trace] * 3
    send(f"{server.url}/sink/bench", data=b'{"wall": 1.25}', headers={"Content-Type": "application/json"})
    assert [doc["body"] for doc in server.sink("bench")] == [{"wall": 1.25}]


def test_injected_status(server):
    server.inject(method="updateJob", action="status", status=503, count=1)
    assert send(f"{server.url}/server/panda/updateJob", form={"jobId": "1", "state": "running"})[0] == 503
    assert send(f"{server.url}/server/panda/updateJob", form={"jobId": "NULL", "state": "running"})[0] == 200


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_injected_drop(server, tls, scheme):
    base, ctx = (server.url, None) if scheme == "http" else (server.https_url, tls)
    server.inject(method="getJob", action="drop", count=1)
    with pytest.raises(OSError) as err:
        send(f"{base}/server/panda/getJob", form={"siteName": "Q"}, context=ctx)
    assert not isinstance(err.value, urllib.error.HTTPError)
    assert panda(base, "getJob", context=ctx, siteName="Q")["StatusCode"] == 20
    assert [r["injected"] for r in server.requests("getJob")] == ["drop", None]


def test_dropped_reply_after_processing_then_retry_is_a_flagged_duplicate(server):
    pandaid = server.submit({"jobPars": "x"})
    server.inject(method="updateJob", action="drop", count=1, process=True)
    form = {"jobId": pandaid, "state": "finished", "pilotErrorCode": "0"}
    with pytest.raises(OSError):
        send(f"{server.url}/server/panda/updateJob", form=form)
    assert panda(server.url, "updateJob", **form)["command"] == "alreadydone"
    record = server.job(pandaid)
    assert record["final_state"] == "finished" and record["n_duplicates"] == 1
    assert [u["note"] for u in record["updates"]] == ["final", "duplicate final"]


def test_injected_malformed_and_partial(server, tls):
    server.inject(method="getJob", action="malformed", count=1)
    server.inject(method="getJob", action="partial", count=1)
    status, body = send(f"{server.https_url}/server/panda/getJob", form={"siteName": "Q"}, context=tls)
    assert status == 200 and body.startswith(b"<html>")
    status, body = send(f"{server.https_url}/server/panda/getJob", form={"siteName": "Q"}, context=tls)
    assert status == 200 and body.startswith(b'{"StatusCode"')
    with pytest.raises(ValueError):
        json.loads(body)


def test_injected_delay(server):
    server.inject(method="schedconfig", action="delay", delay=0.3, count=1)
    start = time.monotonic()
    status, _ = send(f"{server.url}/cache/schedconfig/DEV_QUEUE.all.json")
    assert status == 200 and time.monotonic() - start >= 0.3
    assert server.injections()[0]["exhausted"]


def test_cli_submit_inject_reset_and_jobs(server, tmp_path):
    jobfile = tmp_path / "job.json"
    jobfile.write_text(json.dumps({"jobPars": "-c true", "transformation": "/bin/bash"}))
    out = cli("submit", str(jobfile), "--count", "2", "--url", server.url)
    assert out.returncode == 0, out.stderr
    ids = [int(line) for line in out.stdout.split()]
    assert len(ids) == 2 and ids[1] == ids[0] + 1
    sample = cli("submit", "--sample", "--state-dir", server.config.state_dir)
    assert sample.returncode == 0, sample.stderr
    record = server.job(int(sample.stdout.strip()))
    assert storage_path(server.storage_dir, "dev", record["definition"]["inFiles"]).is_file()
    out = cli("inject", "updateJob:status:status=502,count=1", "--url", server.url)
    assert out.returncode == 0 and json.loads(out.stdout)[0]["status"] == 502
    assert send(f"{server.url}/server/panda/updateJob", form={"jobId": ids[0], "state": "running"})[0] == 502
    assert cli("command", str(ids[0]), "tobekilled", "--url", server.url).returncode == 0
    assert panda(server.url, "updateJob", jobId=ids[0], state="running")["command"] == "tobekilled"
    listing = cli("jobs", "--url", server.url)
    assert listing.returncode == 0 and str(ids[1]) in listing.stdout
    assert cli("inject", "getJob:drop", "--url", server.url).returncode == 0
    assert cli("reset", "--url", server.url).returncode == 0
    assert server.jobs() == [] and server.injections() == []
