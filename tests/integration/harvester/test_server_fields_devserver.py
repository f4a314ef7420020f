"""Credentials and update fields through both protocol generations of a real dev server."""

from __future__ import annotations

import os
import time
from datetime import datetime

import pytest

from pilot.api.communicators.panda import PandaServerCommunicator
from pilot.control.reporting import SiteInfo, build_update
from pilot.devserver.control import InProcessDevServer
from pilot.info.jobdata import JobData, JobPhase
from pilot.util.https import HttpClient
from pilot.util.workernode import host_name


@pytest.fixture
def server(tmp_path):
    with InProcessDevServer(tmp_path / "srv") as srv:
        yield srv


@pytest.fixture
def http():
    client = HttpClient(retries=1, timeout=10, connect_timeout=10)
    yield client
    client.close()


@pytest.mark.parametrize("api", ["legacy", "rest"])
def test_proxy_and_key_pair_in_each_protocol(server, http, api):
    server.set_settings(proxy="-----PROXY-----", keypairs={"pub": "AKIA", "priv": "SECRET"})
    comm = PandaServerCommunicator(server.url, http, api=api, fallback=False)
    assert comm.get_proxy("atlas") == {"StatusCode": 0, "errorDialog": "", "userProxy": "-----PROXY-----"}
    pair = comm.get_key_pair("pub", "priv")
    assert pair["StatusCode"] == 0 and (pair["publicKey"], pair["privateKey"]) == ("AKIA", "SECRET")
    missing = comm.get_key_pair("pub", "nope")
    assert missing["StatusCode"] != 0 and "nope" in missing["errorDialog"]
    names = [r["method"] for r in server.requests()]
    assert names == (["get_proxy", "get_key_pair", "get_key_pair"] if api == "rest"
                     else ["getProxy", "getKeyPair", "getKeyPair"])


def test_credentials_on_a_rest_only_server(server, http):
    """panda-server 1.x answers the legacy getProxy with 403: the pilot asks creds/get_proxy instead."""
    server.set_settings(proxy="-----PROXY-----", legacy_api=False)
    comm = PandaServerCommunicator(server.url, http, api="legacy")
    assert comm.get_proxy("atlas")["userProxy"] == "-----PROXY-----"
    assert comm.api == "rest"
    assert [r["method"] for r in server.requests()] == ["getProxy", "get_proxy"]
    assert comm.get_proxy("")["StatusCode"] == 0
    server.set_settings(proxy="")
    assert comm.get_proxy("atlas")["StatusCode"] != 0


@pytest.mark.parametrize("api", ["legacy", "rest"])
def test_update_fields_each_generation_records(server, http, api):
    pandaid = server.submit({"jobPars": "x", "transformation": "/bin/true"})
    comm = PandaServerCommunicator(server.url, http, api=api, fallback=False)
    job = JobData.from_definition(comm.get_job({"siteName": "DEV_QUEUE", "prodSourceLabel": "managed",
                                                "node": host_name()}))
    site = SiteInfo(site_name="DEV_QUEUE", node=host_name(), pilot_id="g|PR|1")
    sent = []
    for phase in (JobPhase.VALIDATED, JobPhase.STAGEIN, JobPhase.PAYLOAD, JobPhase.STAGEOUT):
        job.advance(phase)
        if phase is JobPhase.PAYLOAD:
            job.corecounts.extend([1, 2])
        fields = build_update(job, site, final=False, pilot_start=time.time())
        comm.update_job(fields)
        sent.append(fields["jobSubStatus"])
    job.advance(JobPhase.FINISHED)
    comm.update_job(build_update(job, site, final=True, pilot_start=time.time()), final=True)
    assert sent == ["setup", "stagein", "running", "stageout"]
    updates = [u["fields"] for u in server.updates(pandaid)]
    assert [u["jobSubStatus"] for u in updates] == ["setup", "stagein", "running", "stageout", "stageout"]
    assert all(u["node"] == os.uname()[1] for u in updates)
    final = updates[-1]
    for key in ("startTime", "endTime"):
        datetime.strptime(str(final[key]), "%Y-%m-%d %H:%M:%S")  # what both server generations parse
    assert float(final["meanCoreCount"]) == (2 if api == "rest" else 1.5)
