"""The background runner: periodic and one-shot activities, stop, exception accounting, the critical hook."""

from __future__ import annotations

import logging
import threading
import time

from pilot.common.errorcodes import ErrorCodes
from pilot.control.supervisor import Supervisor
from pilot.util import runner as runner_module
from pilot.util.prometheus import exception_families, render
from pilot.util.runner import CRITICAL_CODE, Runner, current_runner, use_runner


def test_periodic_activity_runs_until_stopped():
    runner = Runner()
    ticks = []
    third = threading.Event()

    def tick():
        ticks.append(threading.current_thread().name)
        if len(ticks) >= 3:
            third.set()

    activity = runner.start("ticker", tick, interval=0.01)
    assert third.wait(30)
    assert runner.alive() == ["ticker"]
    assert runner.stop(timeout=30)
    assert activity.done and not activity.is_alive() and set(ticks) == {"ticker"}
    assert runner.alive() == [] and "ticker" not in runner.activities  # ended activities are forgotten
    assert runner.exception_counts() == {"ticker": 0}


def test_one_shot_activity_keeps_its_result():
    runner = Runner()
    activity = runner.start("once", lambda a, b: a + b, 2, 3)
    assert activity.join(30)
    assert activity.result == 5 and activity.runs == 1 and activity.error is None


def test_a_cancelled_timer_never_runs():
    runner = Runner()
    ran = []
    activity = runner.start("escalate", lambda: ran.append(1), delay=3600)
    activity.cancel()
    assert activity.join(30) and ran == [] and activity.runs == 0


def test_delay_then_run():
    runner = Runner()
    ran = threading.Event()
    activity = runner.start("later", ran.set, delay=0.01)
    assert ran.wait(30) and activity.join(30)


def test_exception_is_logged_counted_and_the_period_carries_on(caplog):
    runner = Runner(on_failure=lambda *a: hooks.append(a))
    hooks: list = []
    calls = []
    recovered = threading.Event()

    def flaky():
        calls.append(1)
        if len(calls) <= 2:
            raise OSError(f"disk trouble {len(calls)}")
        recovered.set()

    with caplog.at_level(logging.WARNING, logger="pilot.util.runner"):
        activity = runner.start("sampler-17", flaky, interval=0.01, label="sampler")
        assert recovered.wait(30)
    runner.stop(timeout=30)
    assert runner.exception_counts() == {"sampler": 2}
    assert activity.errors == 2 and activity.error == "OSError: disk trouble 2" and activity.runs >= 3
    assert hooks == []  # not critical: nobody is failed
    failures = [r for r in caplog.records if "sampler-17" in r.getMessage()]
    assert len(failures) == 2 and all(r.threadName == "sampler-17" for r in failures)
    assert "disk trouble 1" in failures[0].getMessage() and "Traceback" in failures[0].getMessage()


def test_a_non_critical_one_shot_failure_is_counted():
    runner = Runner()
    activity = runner.start("waiter", lambda: 1 / 0)
    assert activity.join(30)
    assert activity.error.startswith("ZeroDivisionError") and runner.exception_counts() == {"waiter": 1}


def test_critical_failure_calls_the_hook_with_the_code_and_ends():
    hooks = []
    runner = Runner(on_failure=lambda name, error, code: hooks.append((name, error, code)))

    def broken():
        raise RuntimeError("bug")

    activity = runner.start("heart", broken, interval=0.01, critical=True)
    assert activity.join(30)
    assert hooks == [("heart", "RuntimeError: bug", CRITICAL_CODE)] and CRITICAL_CODE == 1319
    assert activity.runs == 1  # a critical activity does not carry on
    other = runner.start("lungs", broken, critical=True, code=ErrorCodes.REACHEDMAXTIME)
    assert other.join(30) and hooks[-1] == ("lungs", "RuntimeError: bug", ErrorCodes.REACHEDMAXTIME)
    assert runner.exception_counts() == {"heart": 1, "lungs": 1}


def test_a_failing_hook_does_not_hide_the_failure(caplog):
    def hook(*_):
        raise ValueError("hook bug")

    runner = Runner(on_failure=hook)
    activity = runner.start("core", lambda: 1 / 0, critical=True)
    assert activity.join(30) and activity.error.startswith("ZeroDivisionError")
    assert any("failure hook of activity core" in r.getMessage() for r in caplog.records)


def test_system_exit_is_recorded_and_ends_a_periodic_activity():
    runner = Runner()

    def leave():
        raise SystemExit(3)

    activity = runner.start("leaver", leave, interval=0.01)
    assert activity.join(30) and activity.runs == 1 and activity.error == "SystemExit: 3"


def test_join_is_bounded():
    runner = Runner()
    release = threading.Event()
    activity = runner.start("stuck", release.wait)  # ignores the stop event
    start = time.monotonic()
    assert runner.stop(timeout=0.2) is False  # does not end: the bounded join gives up
    assert time.monotonic() - start < 30
    assert runner.alive() == ["stuck"]
    release.set()
    assert runner.join(30) and activity.done


def test_stop_wakes_a_long_period_and_later_starts_begin_stopped():
    runner = Runner()
    first = threading.Event()
    activity = runner.start("hourly", first.set, interval=3600)
    assert first.wait(30)
    assert runner.stop(timeout=30) and activity.runs == 1
    ran = []
    late = runner.start("late", lambda: ran.append(1), delay=3600)
    assert late.join(30) and ran == []


def test_activities_started_below_an_activity_go_to_the_current_runner():
    run = Runner()
    nested = []

    def outer():
        nested.append(runner_module.start("inner", lambda: 1 / 0))

    with use_runner(run):
        assert current_runner() is run
        run.start("outer", outer).join(30)
    assert nested[0].join(30)
    assert run.exception_counts() == {"outer": 0, "inner": 1}
    assert current_runner() is not run and current_runner() is not current_runner()  # outside: a fresh one


def test_supervisor_is_a_runner_of_critical_components_that_keeps_them_listed():
    hooks = []
    sup = Supervisor(on_failure=lambda *a: hooks.append(a))
    sup.start("stage_in", lambda: None)
    sup.start("stage_out", lambda: 1 / 0)
    assert sup.join(30)
    assert set(sup.workers) == {"stage_in", "stage_out"} and sup.workers["stage_in"].critical
    assert [w.name for w in sup.failed()] == ["stage_out"]
    assert hooks and hooks[0][0] == "stage_out" and hooks[0][2] == ErrorCodes.INTERNALPILOTPROBLEM


def test_metrics_family_sums_the_runners():
    background, sup = Runner(), Supervisor()
    background.start("metrics-writer", lambda: 1 / 0).join(30)
    background.start("memory-monitor-1", lambda: None, label="memory-monitor").join(30)
    sup.start("stage_in", lambda: None).join(30)
    text = render(exception_families([background, sup]))
    assert 'pilot_background_exceptions_total{activity="metrics-writer"} 1' in text
    assert 'pilot_background_exceptions_total{activity="memory-monitor"} 0' in text
    assert 'pilot_background_exceptions_total{activity="stage_in"} 0' in text
    assert "# TYPE pilot_background_exceptions_total counter" in text


def test_activities_of_the_same_name_are_all_stopped_and_joined():
    runner = Runner()
    first = runner.start("transfer-stage-in", lambda: None, interval=3600)
    second = runner.start("transfer-stage-in", lambda: None, interval=3600)
    assert runner.alive() == ["transfer-stage-in", "transfer-stage-in"]
    assert runner.stop(timeout=30) and first.done and second.done
