"""Unit tests of the dev server's SQLite store (pilot.devserver.store)."""

import threading

import pytest

from pilot.devserver.store import FIRST_PANDAID, Store


@pytest.fixture
def store(tmp_path):
    db = Store(str(tmp_path / "dev.db"))
    yield db
    db.close()


def test_pandaids_are_assigned_increasing(store):
    first = store.add_job({"jobPars": "a"})
    second = store.add_job({"jobPars": "b"})
    assert first == FIRST_PANDAID and second == first + 1
    assert store.add_job({}, pandaid=5000) == 5000
    assert store.add_job({}) == 5001


def test_duplicate_pandaid_is_refused(store):
    store.add_job({}, pandaid=7)
    with pytest.raises(KeyError):
        store.add_job({}, pandaid=7)


def test_background_jobs_go_only_to_background_requests(store):
    flagged = store.add_job({"_background": True})
    plain = store.add_job({})
    assert store.pop_job({"Q"})[0] == plain  # an ordinary request skips the older background job
    assert store.pop_job({"Q"}) is None
    assert store.pop_job({"Q"}, background=True)[0] == flagged
    store.add_job({})
    assert store.pop_job({"Q"}, background=True) is None  # and a background request gets only those


def test_pop_oldest_matching_queue_then_sent(store):
    a = store.add_job({"n": 1}, queue="Q1")
    b = store.add_job({"n": 2})
    c = store.add_job({"n": 3}, queue="Q2")
    assert store.pop_job({"Q2", ""})[0] == b  # oldest job for Q2 or any queue
    assert store.pop_job({"Q2"})[0] == c
    assert store.pop_job({"Q2"}) is None
    pandaid, definition = store.pop_job({"Q1"})
    assert (pandaid, definition) == (a, {"n": 1})
    assert store.get_job(a)["state"] == "sent"
    assert store.get_job(a)["sent_at"] is not None


def test_each_job_is_popped_once_under_concurrency(store):
    ids = {store.add_job({}) for _ in range(40)}
    got, lock = [], threading.Lock()

    def worker():
        while True:
            found = store.pop_job({"ANY"})
            if found is None:
                return
            with lock:
                got.append(found[0])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == sorted(ids)


def test_final_state_is_recorded_once(store):
    pandaid = store.add_job({})
    store.pop_job({""})
    assert store.record_update(pandaid, "starting", {"state": "starting"}).command == "NULL"
    assert store.record_update(pandaid, "running", {"state": "running"}).command == "NULL"
    first = store.record_update(pandaid, "finished", {"state": "finished", "pilotErrorCode": "0"})
    assert first.is_final and not first.duplicate and first.command == "NULL"
    dup = store.record_update(pandaid, "finished", {"state": "finished", "pilotErrorCode": "0"})
    assert dup.duplicate and dup.command == "alreadydone" and dup.note == "duplicate final"
    conflict = store.record_update(pandaid, "failed", {"state": "failed", "pilotErrorCode": "1099"})
    assert conflict.duplicate and "conflicting" in conflict.note
    late = store.record_update(pandaid, "running", {"state": "running"})
    assert not late.duplicate and late.command == "alreadydone" and late.note == "after final"
    job = store.get_job(pandaid)
    assert job["state"] == "finished" and job["final_state"] == "finished"
    assert job["final_update_id"] == first.update_id
    assert job["n_updates"] == 6
    updates = store.updates(pandaid)
    assert [u["is_final"] for u in updates] == [False, False, True, False, False, False]
    assert [u["duplicate"] for u in updates] == [False, False, False, True, True, False]
    assert updates[2]["fields"]["pilotErrorCode"] == "0"


def test_command_is_delivered_once(store):
    pandaid = store.add_job({})
    assert store.set_command(pandaid, "tobekilled")
    assert store.record_update(pandaid, "running", {}).command == "tobekilled"
    assert store.record_update(pandaid, "running", {}).command == "NULL"
    assert not store.set_command(99999, "debug")


def test_command_pending_at_final_is_delivered_with_the_final_reply(store):
    pandaid = store.add_job({})
    store.set_command(pandaid, "debug")
    assert store.record_update(pandaid, "failed", {}).command == "debug"
    assert store.get_job(pandaid)["command"] is None


def test_starting_after_running_keeps_running(store):
    pandaid = store.add_job({})
    store.record_update(pandaid, "running", {})
    store.record_update(pandaid, "starting", {})
    assert store.get_job(pandaid)["state"] == "running"


def test_unknown_job_update_is_stored_but_not_found(store):
    outcome = store.record_update(4242, "running", {"jobId": "4242"})
    assert not outcome.found and outcome.note == "unknown job"
    assert store.updates(4242)[0]["note"] == "unknown job"


def test_event_ranges_are_assigned_once(store):
    pandaid = store.add_job({})
    ids = store.add_ranges(pandaid, [{"eventRangeID": "r1", "startEvent": 1}, {"startEvent": 2}, {"startEvent": 3}])
    assert ids == ["r1", f"{pandaid}-2", f"{pandaid}-3"]
    first = store.take_ranges(pandaid, 2)
    assert [r["eventRangeID"] for r in first] == ["r1", f"{pandaid}-2"]
    assert [r["eventRangeID"] for r in store.take_ranges(pandaid, 5)] == [f"{pandaid}-3"]
    assert store.take_ranges(pandaid, 5) == []
    assert store.update_range("r1", "finished", {"eventRangeID": "r1", "eventStatus": "finished"})
    assert not store.update_range("nope", "finished", {})
    states = {r["range_id"]: r["status"] for r in store.ranges(pandaid)}
    assert states == {"r1": "finished", f"{pandaid}-2": "assigned", f"{pandaid}-3": "assigned"}


def test_requests_traces_sinks_and_reset(store):
    store.record_request("getJob", {"siteName": "Q"}, client="127.0.0.1", scheme="http", http_status=200)
    store.record_request("updateJob", {"jobId": "1"}, injected="drop")
    assert [r["method"] for r in store.requests()] == ["getJob", "updateJob"]
    assert store.requests("updateJob")[0]["injected"] == "drop"
    store.add_trace({"eventType": "get_sm"})
    store.add_sink("bench", {"x": 1})
    assert store.traces() == [{"eventType": "get_sm"}]
    assert store.sink("bench")[0]["body"] == {"x": 1}
    assert store.sink("other") == []
    store.add_job({})
    store.reset()
    assert store.counts() == dict.fromkeys(("jobs", "updates", "requests", "eventranges", "traces", "sinks"), 0)


def test_job_states_for_get_status(store):
    pandaid = store.add_job({"attemptNr": "3"})
    assert store.job_states([pandaid, 1]) == [("activated", "3"), None]
