"""InfoService: sources in priority order, retries, the cache, error codes, Harvester's call shape."""

import json
import os
import time

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import CommunicationFailure, PilotException
from pilot.info import InfoService, JobInfoProvider, infosys
from pilot.info.extinfo import ExtInfoProvider, extract_queue

QUEUE = {"nickname": "Q1", "state": "ACTIVE", "maxwdir": 1000, "acopytools": {"pr": ["mv"]},
         "astorages": {"pr": ["DISK"]}}
STORAGES = {"DISK": {"name": "DISK", "id": 5, "arprotocols": {"read_lan": [{"endpoint": "file://", "path": "/s"}]}}}


class FakeHttp:
    """Serves URL -> bytes; fails the first ``failures`` calls of each URL."""

    def __init__(self, pages, failures=0):
        self.pages, self.failures, self.calls = pages, failures, []

    def get(self, url, timeout=None, retries=None):
        self.calls.append(url)
        if self.calls.count(url) <= self.failures:
            raise CommunicationFailure(f"GET {url} failed")
        if url not in self.pages:
            raise CommunicationFailure("HTTP 404")
        page = self.pages[url]
        return page if isinstance(page, bytes) else json.dumps(page).encode()


def make(tmp_path, pages, failures=0, **kw):
    http = FakeHttp(pages, failures)
    svc = InfoService()
    svc.init("Q1", http=http, cache_dir=str(tmp_path), use_config=False, retry_wait=0.001, **kw)
    return svc, http


def test_queuedata_from_url_with_placeholder_and_storage(tmp_path):
    svc, http = make(tmp_path, {"http://s/cache/Q1.all.json": QUEUE, "http://s/storagedata.json": STORAGES},
                     queuedata_url="http://s/cache/{pandaqueue}.all.json", storagedata_url="http://s/storagedata.json")
    assert svc.queuedata.name == "Q1" and svc.queuedata.maxwdir == 1000
    assert svc.get_storage("DISK").pk == 5 and svc.get_ddmendpoint(5) == "DISK" and svc.get_storage_id("DISK") == 5
    assert (tmp_path / "queuedata.json").exists() and (tmp_path / "cric_ddmendpoints.json").exists()
    svc.check_queue()


def test_keyed_dict_answer_cric_style(tmp_path):
    svc, _ = make(tmp_path, {"http://s/q": {"Q1": QUEUE, "OTHER": {"nickname": "OTHER"}}}, queuedata_url="http://s/q")
    assert svc.queuedata.name == "Q1"


def test_retries_up_to_three_times(tmp_path):
    svc, http = make(tmp_path, {"http://s/q": QUEUE}, failures=2, queuedata_url="http://s/q")
    assert svc.queuedata.name == "Q1" and http.calls.count("http://s/q") == 3


def test_gives_up_after_three_attempts_with_1116(tmp_path):
    with pytest.raises(PilotException) as err:
        make(tmp_path, {"http://s/q": QUEUE}, failures=3, queuedata_url="http://s/q")
    assert err.value.get_error_code() == ErrorCodes.QUEUEDATA


def test_not_json_is_1116(tmp_path):
    with pytest.raises(PilotException) as err:
        make(tmp_path, {"http://s/q": b"<html>oops</html>"}, queuedata_url="http://s/q")
    assert err.value.get_error_code() == ErrorCodes.QUEUEDATA


def test_error_reply_is_1116(tmp_path):
    with pytest.raises(PilotException) as err:
        make(tmp_path, {"http://s/q": {"error": "no such queue"}}, queuedata_url="http://s/q")
    assert err.value.get_error_code() == ErrorCodes.QUEUEDATA


def test_missing_required_field_is_1117(tmp_path):
    with pytest.raises(PilotException) as err:
        make(tmp_path, {"http://s/q": {"nickname": "", "state": "ACTIVE", "maxwdir": 1}}, queuedata_url="http://s/q")
    assert err.value.get_error_code() == ErrorCodes.QUEUEDATANOTOK


def test_bad_structure_is_1341(tmp_path):
    bad = dict(QUEUE, copytools="{broken")
    with pytest.raises(PilotException) as err:
        make(tmp_path, {"http://s/q": bad}, queuedata_url="http://s/q")
    assert err.value.get_error_code() == ErrorCodes.BADQUEUECONFIGURATION


def test_queue_not_active_is_1359_from_check_queue(tmp_path):
    svc, _ = make(tmp_path, {"http://s/q": dict(QUEUE, state="BROKEN")}, queuedata_url="http://s/q")
    with pytest.raises(PilotException) as err:
        svc.check_queue()
    assert err.value.get_error_code() == ErrorCodes.PANDAQUEUENOTACTIVE
    with pytest.raises(PilotException):
        make(tmp_path / "x", {"http://s/q": dict(QUEUE, state="BROKEN")}, queuedata_url="http://s/q", check_state=True)


def test_cache_used_within_validity_and_refreshed_after(tmp_path):
    make(tmp_path, {"http://s/q": QUEUE}, queuedata_url="http://s/q")
    svc, http = make(tmp_path, {"http://s/q": dict(QUEUE, maxwdir=5)}, queuedata_url="http://s/q")
    assert svc.queuedata.maxwdir == 1000 and http.calls == []  # from the cache
    old = time.time() - 4 * 3600
    os.utime(tmp_path / "queuedata.json", (old, old))
    svc, http = make(tmp_path, {"http://s/q": dict(QUEUE, maxwdir=5)}, queuedata_url="http://s/q")
    assert svc.queuedata.maxwdir == 5 and http.calls == ["http://s/q"]


def test_cache_of_another_queue_is_ignored(tmp_path):
    (tmp_path / "queuedata.json").write_text(json.dumps({"nickname": "OTHER", "state": "ACTIVE"}))
    svc, _ = make(tmp_path, {"http://s/q": QUEUE}, queuedata_url="http://s/q")
    assert svc.queuedata.name == "Q1"


def test_local_file_and_file_url_sources(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps(QUEUE))
    svc = InfoService().init("Q1", queuedata_path=str(path), cache_dir=str(tmp_path / "c"), use_config=False)
    assert svc.queuedata.name == "Q1"
    svc = InfoService().init("Q1", queuedata_url=f"file://{path}", cache_dir=str(tmp_path / "d"), use_config=False)
    assert svc.queuedata.name == "Q1"


def test_no_source_at_all_is_1116(tmp_path):
    with pytest.raises(PilotException) as err:
        InfoService().init("Q1", cache_dir=str(tmp_path), use_config=False)
    assert err.value.get_error_code() == ErrorCodes.QUEUEDATA


def test_missing_storage_data_is_not_fatal_but_lookup_is_1133(tmp_path):
    svc, _ = make(tmp_path, {"http://s/q": QUEUE}, queuedata_url="http://s/q")
    assert svc.resolve_storage_data() == {}
    with pytest.raises(PilotException) as err:
        svc.get_storage("DISK")
    assert err.value.get_error_code() == ErrorCodes.NOSTORAGE


def test_job_overrides_via_jobinfoprovider(tmp_path):
    class Job:
        jobid = "1"
        jobparams = "--foo 1 --overwriteQueueData={'maxwdir': 7, 'direct_access_lan': 'false'} --bar"

    base, _ = make(tmp_path, {"http://s/q": QUEUE}, queuedata_url="http://s/q")
    svc = InfoService().init("Q1", base.confinfo, base.extinfo, JobInfoProvider(Job()))
    assert svc.queuedata.maxwdir == 7 and svc.queuedata.direct_access_lan is False


def test_harvester_call_shape_on_module_instance(tmp_path, monkeypatch):
    http = FakeHttp({"http://s/q": QUEUE})
    for attr, value in list(vars(infosys).items()):  # restore the shared instance afterwards
        monkeypatch.setattr(infosys, attr, value)
    monkeypatch.setattr(infosys, "extinfo", ExtInfoProvider(http=http, cache_dir=str(tmp_path), use_config=False,
                                                            queuedata_url="http://s/q"))
    assert infosys.confinfo is None or infosys.confinfo is not None  # attribute exists before init
    infosys.init("Q1", infosys.confinfo, infosys.extinfo)
    infosys.queuedata.direct_access_lan = False
    infosys.queuedata.direct_access_wan = False
    assert infosys.queuedata.name == "Q1" and infosys.pandaqueue == "Q1"


def test_unknown_init_keyword_rejected(tmp_path):
    with pytest.raises(TypeError):
        InfoService().init("Q1", no_such_setting=1)


def test_empty_queue_name_is_1116():
    with pytest.raises(PilotException) as err:
        InfoService().init("")
    assert err.value.get_error_code() == ErrorCodes.QUEUEDATA


def test_extract_queue_shapes():
    assert extract_queue([QUEUE], "Q1") == QUEUE
    assert extract_queue({"nickname": "Z", "state": "ACTIVE"}, "Q1", strict=True) is None
    assert extract_queue({"nickname": "Z", "state": "ACTIVE"}, "Q1")["nickname"] == "Z"
    assert extract_queue({"A": 1}, "Q1") is None and extract_queue("x", "Q1") is None
