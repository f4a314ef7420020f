"""JobMonitor (verdicts, heartbeats, server commands) and PilotMonitor (lifetime, dead components)."""

import os
import threading
import time
from types import SimpleNamespace

from monitorfakes import FakeExecutor, FakeUser, make_ctx, make_job, running

from pilot.common.errorcodes import ErrorCodes
from pilot.control.monitor import JobMonitor, PilotMonitor, handle_server_command, heartbeat_period
from pilot.control.monitoring.base import Verdict
from pilot.control.supervisor import Supervisor
from pilot.info.jobdata import JobPhase


def setup_running(tmp_path, ctx=None, **fields):
    ctx = ctx or make_ctx(tmp_path)
    workdir = tmp_path / "job"
    workdir.mkdir(exist_ok=True)
    job = running(make_job(workdir, **fields))
    executor = FakeExecutor()
    ctx.current_jobs[job.jobid] = job
    ctx.executors[job.jobid] = executor
    return ctx, job, executor


# ---------------------------------------------------------------------------- server commands
def test_tobekilled(tmp_path):
    ctx, job, executor = setup_running(tmp_path)
    job.fail(ErrorCodes.STAGEOUTFAILED, "earlier")
    handle_server_command(ctx, job, "tobekilled")
    assert job.errors.first()[0] == ErrorCodes.PANDAKILL and executor.kills
    assert ctx.events.abort_job.is_set()


def test_debug_on_off_and_debug_commands(tmp_path, settings):
    settings(heartbeat=1800, debug_heartbeat=60)
    ctx, job, _ = setup_running(tmp_path)
    handle_server_command(ctx, job, "NULL")
    handle_server_command(ctx, job, None)
    assert not job.debug
    handle_server_command(ctx, job, "debug")
    assert job.debug and heartbeat_period(job) == 60
    job.debug_stdout = "something"
    handle_server_command(ctx, job, "debugoff")
    assert not job.debug and job.debug_stdout == "" and heartbeat_period(job) == 1800
    handle_server_command(ctx, job, "tail -n 5 payload.stdout")
    assert job.debug and job.server_command == "tail -n 5 payload.stdout"
    handle_server_command(ctx, job, "debugoff")
    assert job.server_command == "" and not job.debug
    handle_server_command(ctx, job, "rm -rf /")  # not a debug verb: ignored
    assert not job.debug and job.server_command == ""
    handle_server_command(ctx, job, "softkill")
    assert not job.errors


# ---------------------------------------------------------------------------- job monitor
def test_job_monitor_applies_a_verdict_and_stops_checking(tmp_path, settings):
    settings(looping_limit_default=0, looping_limit_min_default=0, looping_verification_time=0.05,
             memory_monitor="off", heartbeat=1800)
    ctx, job, executor = setup_running(tmp_path)
    monitor = JobMonitor(ctx)
    monitor.tick(time.monotonic())
    assert job.jobid in monitor.watches
    time.sleep(0.1)
    monitor.tick(time.monotonic())
    assert job.errors.first()[0] == ErrorCodes.LOOPINGJOB and len(executor.kills) == 1
    monitor.tick(time.monotonic() + 10)
    assert len(executor.kills) == 1  # one verdict per job
    # the payload ends: the watch is closed
    del ctx.executors[job.jobid]
    monitor.tick(time.monotonic())
    assert not monitor.watches


def test_job_monitor_heartbeat_carries_cpu_memory_and_handles_reply(tmp_path, settings):
    settings(heartbeat=1800, debug_heartbeat=60, memory_monitor="off")
    ctx, job, executor = setup_running(tmp_path)
    job.memory_summary = {"maxPSS": 123, "avgRSS": 45}
    ctx.reporter.replies.append("tobekilled")
    monitor = JobMonitor(ctx)
    monitor.tick(time.monotonic())
    beat = ctx.reporter.heartbeats[-1]
    assert beat["state"] == "running" and beat["cpuConsumptionTime"] == 2 and beat["maxPSS"] == 123
    assert "cpuConsumptionUnit" in beat and beat["cpuConversionFactor"] == 1.0
    assert job.errors.first()[0] == ErrorCodes.PANDAKILL and executor.kills
    monitor.tick(time.monotonic())
    assert len(ctx.reporter.heartbeats) == 1  # not due again before the heartbeat period


def test_job_monitor_debug_output_in_heartbeats(tmp_path, settings):
    settings(heartbeat=1800, debug_heartbeat=0.01, memory_monitor="off")
    ctx, job, _ = setup_running(tmp_path)
    (tmp_path / "job" / "payload.stdout").write_text("hello from the payload\n")
    ctx.reporter.replies.append("debug")
    monitor = JobMonitor(ctx)
    monitor.tick(time.monotonic())
    time.sleep(0.02)
    ctx.reporter.replies.append("ls -1")
    monitor.tick(time.monotonic())
    assert ctx.reporter.heartbeats[-1]["stdout"] == "hello from the payload\n"
    time.sleep(0.02)
    ctx.reporter.replies.append("debugoff")
    monitor.tick(time.monotonic())
    assert ctx.reporter.heartbeats[-1]["stdout"].startswith("$ ls -1\n") and "payload.stdout" in \
        ctx.reporter.heartbeats[-1]["stdout"]
    assert not job.debug and job.debug_stdout == ""
    monitor.last_beat.clear()
    ctx.reporter.last_update.clear()
    monitor.tick(time.monotonic())
    assert len(ctx.reporter.heartbeats) == 4 and "stdout" not in ctx.reporter.heartbeats[-1]


def test_job_monitor_refuses_a_bad_debug_command(tmp_path, settings):
    settings(heartbeat=1800, debug_heartbeat=0.01, memory_monitor="off")
    ctx, job, _ = setup_running(tmp_path)
    ctx.reporter.replies.append("tail /etc/passwd")
    monitor = JobMonitor(ctx)
    monitor.tick(time.monotonic())
    time.sleep(0.02)
    monitor.tick(time.monotonic())
    assert ctx.reporter.heartbeats[-1]["stdout"].startswith("debug command refused")


def test_pilot_level_verdict_applies_to_running_jobs(tmp_path, settings):
    settings(memory_monitor="off", heartbeat=1800)
    ctx, job, executor = setup_running(tmp_path)
    monitor = JobMonitor(ctx)
    monitor.add_check("fake", 0.1, lambda c: Verdict(ErrorCodes.NOVOMSPROXY, "no voms"))
    time.sleep(0.15)
    monitor.tick(time.monotonic())
    assert job.errors.first()[0] == ErrorCodes.NOVOMSPROXY and executor.kills == ["no voms"]


def test_job_monitor_thread_ends_at_once_on_stop(tmp_path):
    ctx = make_ctx(tmp_path)
    monitor = JobMonitor(ctx)
    thread = threading.Thread(target=monitor.run)
    thread.start()
    time.sleep(0.1)
    start = time.monotonic()
    ctx.stop("test")
    thread.join(2)
    assert not thread.is_alive() and time.monotonic() - start < 1


# ---------------------------------------------------------------------------- pilot monitor
def test_pilot_lifetime_soft_then_hard(tmp_path, settings):
    settings(lifetime_safety_margin=40)
    ctx, job, executor = setup_running(tmp_path)
    # 70 s of a 100 s lifetime used: past the soft deadline (60 s)
    pm = PilotMonitor(ctx, 100, start_wall=time.time() - 70)
    pm.check_lifetime()
    assert job.errors.first()[0] == ErrorCodes.REACHEDMAXTIME and executor.kills
    assert ctx.events.graceful_stop.is_set() and not ctx.events.abort_job.is_set()
    assert not ctx.reporter.finals
    pm.life.start_wall -= 15  # 85 s used: past the hard deadline (80 s)
    pm.check_lifetime()
    assert ctx.reporter.finals == [job] and ctx.events.abort_job.is_set()
    assert job.jobid not in ctx.current_jobs


def test_pilot_lifetime_stops_a_job_before_its_payload_starts(tmp_path, settings):
    settings(lifetime_safety_margin=40)
    ctx = make_ctx(tmp_path)
    job = make_job(tmp_path)
    job.advance(JobPhase.VALIDATED)
    job.advance(JobPhase.STAGEIN)
    ctx.current_jobs[job.jobid] = job
    PilotMonitor(ctx, 100, start_wall=time.time() - 70).check_lifetime()
    assert job.errors.first()[0] == ErrorCodes.REACHEDMAXTIME and ctx.events.abort_job.is_set()


def test_dead_component_fails_the_job_and_reports_it_after_the_grace(tmp_path, settings):
    settings(thread_failure_grace=0.2, thread_check=0.05)
    ctx, job, executor = setup_running(tmp_path)
    pm = PilotMonitor(ctx, 0)
    sup = Supervisor(on_failure=pm.on_thread_failure)
    ctx.supervisor = sup

    def broken():
        raise RuntimeError("bug")

    sup.start("stage_out", broken)
    sup.workers["stage_out"].thread.join(2)
    assert job.errors.first()[0] == ErrorCodes.INTERNALPILOTPROBLEM and executor.kills
    assert ctx.pilot_error == ErrorCodes.INTERNALPILOTPROBLEM and ctx.events.abort_job.is_set()
    thread = threading.Thread(target=pm.run)
    start = time.monotonic()
    thread.start()
    thread.join(5)
    assert not thread.is_alive() and ctx.reporter.finals == [job] and time.monotonic() - start < 3
    assert ctx.queues.get(("completed_jobs",), timeout=0) == ("completed_jobs", job)


def test_component_that_ends_without_error_while_jobs_remain(tmp_path, settings):
    ctx, job, _ = setup_running(tmp_path)
    pm = PilotMonitor(ctx, 0)
    sup = Supervisor(on_failure=pm.on_thread_failure)
    ctx.supervisor = sup
    sup.start("validate", lambda: None)
    sup.workers["validate"].thread.join(2)
    pm.check_components()
    assert not job.errors  # once could be a job that is just completing
    pm.check_components()
    assert job.errors.first()[0] == ErrorCodes.INTERNALPILOTPROBLEM


def test_lifetime_counts_from_the_process_start(tmp_path):
    from pilot.control.monitoring.lifetime import process_start_time

    started = process_start_time()
    assert started is not None and started <= time.time()
    assert process_start_time(os.getppid()) <= started + 0.05  # the parent started first
    ctx = make_ctx(tmp_path)
    assert PilotMonitor(ctx, 100).life.start_wall <= ctx.start_time


def test_pilot_monitor_ends_when_the_pilot_is_done(tmp_path):
    ctx = make_ctx(tmp_path)
    pm = PilotMonitor(ctx, 0)
    thread = threading.Thread(target=pm.run)
    thread.start()
    time.sleep(0.05)
    ctx.stop("done")
    thread.join(2)
    assert not thread.is_alive()


def test_user_plugin_missing_functions_fall_back(tmp_path, settings):
    settings(memory_monitor="off", heartbeat=1800)
    user = FakeUser(monitoring=SimpleNamespace(), memory=SimpleNamespace())
    ctx, job, executor = setup_running(tmp_path, ctx=make_ctx(tmp_path, user=user))
    monitor = JobMonitor(ctx)
    monitor.tick(time.monotonic())
    assert job.jobid in monitor.watches and not job.errors
