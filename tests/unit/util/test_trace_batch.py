"""Trace batches: one POST for a transfer's traces, a list only when there are several, fallback one by one."""

from pilot.util.https import HttpError
from pilot.util.tracereport import TraceBatch, TraceReport


class FakeHttp:
    def __init__(self, refuse_lists: int = 0, fail: bool = False):
        self.posts = []
        self.refuse_lists = refuse_lists
        self.fail = fail

    def post_json(self, url, body, **kw):
        self.posts.append(body)
        if self.fail:
            raise OSError("connection refused")
        if isinstance(body, list) and self.refuse_lists:
            raise HttpError("bad request", self.refuse_lists, b"")
        return None


def trace(name: str, **kw) -> TraceReport:
    return TraceReport(eventType="get_sm", localSite="SITE", remoteSite="RSE", filename=name, clientState="DONE", **kw)


def test_several_traces_leave_in_one_list():
    http = FakeHttp()
    batch = TraceBatch("http://rucio/traces/", http)
    for n in range(5):
        assert batch.add(trace(f"f{n}"))
    assert len(batch) == 5 and batch.flush() == 5
    assert len(http.posts) == 1 and [t["filename"] for t in http.posts[0]] == [f"f{n}" for n in range(5)]
    assert batch.flush() == 0 and len(http.posts) == 1  # emptied


def test_one_trace_is_sent_as_an_object():
    http = FakeHttp()
    assert trace("one").send("http://rucio/traces/", http)
    assert isinstance(http.posts[0], dict) and http.posts[0]["filename"] == "one"


def test_a_server_that_refuses_lists_gets_them_one_by_one():
    http = FakeHttp(refuse_lists=400)
    batch = TraceBatch("http://rucio/traces/", http)
    batch.add(trace("a"))
    batch.add(trace("b"))
    assert batch.flush() == 2
    assert isinstance(http.posts[0], list) and [p["filename"] for p in http.posts[1:]] == ["a", "b"]


def test_disabled_or_incomplete_traces_are_not_kept_and_failures_do_not_raise():
    batch = TraceBatch("http://rucio/traces/", FakeHttp(fail=True))
    assert not batch.add(trace("off", enabled=False))
    assert not batch.add(TraceReport(eventType="get_sm", filename="x"))  # no sites
    assert batch.add(trace("kept"))
    assert batch.flush() == 0  # the POST failed: logged, not raised


def test_job_trace_carries_the_queue_the_switch_and_the_job():
    from types import SimpleNamespace

    from pilot.util.filehandling import md5_hexdigest
    from pilot.util.tracereport import job_trace

    job = SimpleNamespace(produserid="/DC=org/CN=user", jobid="42", taskid="7", is_analysis=True)
    trace = job_trace(job, SimpleNamespace(queue="QUEUE_A", use_rucio_traces=False))
    assert (trace.pq, trace.enabled, trace.appid, trace.taskid) == ("QUEUE_A", False, "42", "7")
    assert trace.usr == md5_hexdigest(b"/DC=org/CN=user") and trace.eventType == "get_sm_a"
    assert job_trace(job, SimpleNamespace(queue="Q")).enabled  # traces are on unless the option says no
