"""JobQueues: named queues with multi-name blocking get, stop conditions, no polling."""

import queue
import threading
import time

import pytest

from pilot.control.context import JobQueues, PilotContext


def test_get_from_several_names_in_order():
    q = JobQueues()
    q.put("failed_jobs", "a")
    q.put("finished_data_out", "b")
    assert q.get(("finished_data_out", "failed_jobs"), timeout=0) == ("finished_data_out", "b")
    assert q.get(("finished_data_out", "failed_jobs"), timeout=0) == ("failed_jobs", "a")
    assert q.get(("finished_data_out",), timeout=0) is None


def test_blocking_get_wakes_on_put():
    q = JobQueues()
    got = []
    t = threading.Thread(target=lambda: got.append(q.get(("jobs",), timeout=10)))
    t.start()
    time.sleep(0.05)
    q.put("jobs", 1)
    t.join(2)
    assert got == [("jobs", 1)]


def test_until_ends_wait_when_woken():
    q = JobQueues()
    flag = threading.Event()
    result = []
    t = threading.Thread(target=lambda: result.append(q.get(("jobs",), until=flag.is_set)))
    t.start()
    time.sleep(0.05)
    flag.set()
    q.wake_all()
    t.join(2)
    assert result == [None]


def test_queue_view_compat():
    q = JobQueues()
    q.jobs.put(3)
    assert q.jobs.qsize() == 1 and not q.jobs.empty()
    assert q.jobs.get(timeout=0) == 3
    with pytest.raises(queue.Empty):
        q.jobs.get(block=False)


def test_context_take_returns_none_when_finished():
    ctx = PilotContext(args=None, mainworkdir="/tmp")
    ctx.stop("test")
    assert ctx.take(("jobs",)) is None


def test_supervisor_counts_a_worker_done_before_its_thread_ends():
    from pilot.control.supervisor import Supervisor

    sup = Supervisor()
    seen = []
    sup.start("quick", lambda: None)
    sup.changed.wait(5)
    seen.append(sup.alive())  # no window in which a finished worker still counts as alive
    assert seen == [[]]
    assert sup.join(5)
