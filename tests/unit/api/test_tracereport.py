"""TraceReport: the §8 fields, dict-style use, skipping rules, sending."""

import pytest

from pilot.info import FileSpec
from pilot.util.tracereport import TraceReport

FIELDS = ("eventType eventVersion protocol clientState localSite remoteSite timeStart catStart relativeStart "
          "transferStart validateStart timeEnd dataset version duid filename guid filesize usr appid hostname ip "
          "suspicious usrdn url stateReason uuid taskid pq").split()


class Http:
    def __init__(self, fail=False):
        self.posts, self.fail = [], fail

    def post_json(self, url, obj, **kw):
        if self.fail:
            raise OSError("down")
        self.posts.append((url, obj))


@pytest.fixture(autouse=True)
def traces_on(monkeypatch):
    monkeypatch.delenv("PILOT_USE_RUCIO_TRACES", raising=False)


def test_fields_and_dict_use():
    t = TraceReport(pq="Q", localSite="A", remoteSite="B", dataset="", eventType="get_sm", workdir="/x", junk=1)
    assert set(t.as_dict()) == set(FIELDS)
    t["clientState"] = "DONE"
    t.update({"protocol": "mv"}, stateReason="ok", unknown=3)
    assert t["clientState"] == "DONE" and t.get("protocol") == "mv" and t.get("nothing", 5) == 5
    with pytest.raises(KeyError):
        t["bogus"]


def test_init_from_job_and_file():
    class Job:
        produserid, jobid, taskid, is_analysis = "/DC=ch/CN=someone", 42, 7, True
    t = TraceReport()
    t.init(Job())
    assert t.appid == "42" and t.taskid == "7" and len(t.usr) == 32 and t.eventType == "get_sm_a"
    t.set_file(FileSpec(lfn="f", guid="ab-cd", filesize=3, ddmendpoint="D", dataset="ds"), True, "put")
    assert (t.filename, t.guid, t.filesize, t.eventType, t.remoteSite, t.dataset) == ("f", "abcd", 3, "put_sm_a",
                                                                                      "D", "ds")


def test_send_rules(monkeypatch):
    http = Http()
    assert not TraceReport(eventType="get_sm", localSite="A").send("http://h/traces/", http)  # no remoteSite
    t = TraceReport(eventType="get_sm", localSite="A", remoteSite="B")
    assert t.send("http://h/traces/", http) and http.posts[0][1]["remoteSite"] == "B"
    assert "workdir" not in http.posts[0][1] and http.posts[0][1]["timeEnd"]
    t.enabled = False
    assert not t.send("http://h/traces/", http)
    monkeypatch.setenv("PILOT_USE_RUCIO_TRACES", "false")
    assert not TraceReport(eventType="e", localSite="A", remoteSite="B").send("http://h/", http)
    monkeypatch.delenv("PILOT_USE_RUCIO_TRACES")
    assert not TraceReport(eventType="e", localSite="A", remoteSite="B").send("http://h/", Http(fail=True))
    assert len(http.posts) == 1


def test_copies_are_independent():
    t = TraceReport(eventType="get_sm")
    c = t.copy()
    c.filename = "x"
    assert t.filename is None and c.uuid == t.uuid
