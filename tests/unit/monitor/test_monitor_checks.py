"""Each job check on its own, with a fake job, executor and context."""

import os
import time
from types import SimpleNamespace

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.control.monitoring.base import Verdict, WatchedJob, parse_size
from pilot.control.monitoring.disk import DiskCheck, disk_usage, max_workdir_size
from pilot.control.monitoring.killfile import KillFileCheck
from pilot.control.monitoring.lifetime import Lifetime, WalltimeCheck, safety_margin
from pilot.control.monitoring.looping import LoopingCheck, looping_limit
from pilot.control.monitoring.memory import MemoryCheck, MemorySampler, memory_limit_kb, summary_fields
from pilot.control.monitoring.proxy import ProxyCheck
from pilot.control.monitoring.suspend import FastCheck, PauseTracker

from monitorfakes import FakeExecutor, FakeUser, make_ctx, make_job, running


def watched_job(tmp_path, ctx=None, **job_fields):
    workdir = tmp_path / "job"
    workdir.mkdir(exist_ok=True)
    ctx = ctx or make_ctx(tmp_path)
    job = running(make_job(workdir, **job_fields))
    return WatchedJob(ctx, job, FakeExecutor())


def test_parse_size():
    assert parse_size("2 GB") == 2 * 1024 ** 3 and parse_size("500GB") == 500 * 1024 ** 3
    assert parse_size("14336 MB") == 14336 * 1024 ** 2 and parse_size(1024) == 1024
    assert parse_size("1.5 KiB") == 1536 and parse_size("10") == 10
    with pytest.raises(ValueError):
        parse_size("lots")


# ---------------------------------------------------------------------------- looping
def test_looping_limit_rules(tmp_path, settings):
    settings(looping_limit_default=7200, looping_limit_min_default=3600)
    job = make_job(tmp_path)
    assert looping_limit(job) == 7200
    job.maxcpucount = 5000
    assert looping_limit(job) == 5000  # the job's value, above the minimum
    job.maxcpucount = 1000
    assert looping_limit(job) == 7200  # too small: the default


def test_looping_verdict_when_nothing_changes(tmp_path, settings):
    settings(looping_limit_default=10, looping_limit_min_default=10, looping_verification_time=1)
    watched = watched_job(tmp_path)
    (tmp_path / "job" / "data.txt").write_text("x")
    check = LoopingCheck(watched)
    start = watched.started
    assert check.run(start + 5) is None
    verdict = check.run(start + 11)
    assert verdict.code == ErrorCodes.LOOPINGJOB and "11 s" in verdict.diag


def test_looping_progress_resets_the_clock(tmp_path, settings):
    settings(looping_limit_default=10, looping_limit_min_default=10)
    watched = watched_job(tmp_path)
    out = tmp_path / "job" / "out.txt"
    out.write_text("a")
    check = LoopingCheck(watched, wall=time.time)
    start = watched.started
    assert check.run(start + 8) is None
    out.write_text("ab")  # progress
    assert check.run(start + 9) is None
    assert check.run(start + 18) is None
    assert check.run(start + 20).code == ErrorCodes.LOOPINGJOB


def test_looping_ignores_pilot_files_and_plugin_noise(tmp_path, settings):
    settings(looping_limit_default=10, looping_limit_min_default=10)
    noise = SimpleNamespace(remove_unwanted_files=lambda wd, files: [f for f in files if not f.endswith(".noise")])
    ctx = make_ctx(tmp_path, user=FakeUser(loopingjob_definitions=noise))
    watched = watched_job(tmp_path, ctx=ctx)
    check = LoopingCheck(watched)
    start = watched.started
    for name in ("memory_monitor_output.txt", "memory_monitor_summary.json", "x.noise", "payload_guard.json"):
        (tmp_path / "job" / name).write_text(str(time.time()))
    assert check.run(start + 11).code == ErrorCodes.LOOPINGJOB


def test_looping_does_not_count_a_stopped_payload(tmp_path, settings):
    settings(looping_limit_default=10, looping_limit_min_default=10)
    watched = watched_job(tmp_path)
    watched.pause = PauseTracker()
    check = LoopingCheck(watched)
    t0 = watched.started
    watched.pause.update(True, t0 + 2)   # SIGSTOP
    assert check.run(t0 + 30) is None    # stopped: no verdict while stopped
    watched.pause.update(False, t0 + 30)  # SIGCONT after 28 s
    assert check.run(t0 + 31) is None    # only 3 s of running time without progress
    assert check.run(t0 + 39).code == ErrorCodes.LOOPINGJOB  # 11 s of running time


def test_looping_file_time_from_a_jumped_wall_clock_is_bounded(tmp_path, settings):
    settings(looping_limit_default=10, looping_limit_min_default=10)
    watched = watched_job(tmp_path)
    check = LoopingCheck(watched, wall=lambda: time.time() + 10_000)  # the wall clock jumped forward
    start = watched.started
    (tmp_path / "job" / "new.txt").write_text("progress")
    assert check.run(start + 5) is None  # progress seen in this interval: not 10000 s old
    assert check.run(start + 9) is None
    assert check.run(start + 16).code == ErrorCodes.LOOPINGJOB


def test_pause_tracker_totals():
    clock = [100.0]
    tracker = PauseTracker(monotonic=lambda: clock[0], wall=lambda: clock[0])
    tracker.update(True, 110)
    assert tracker.paused and tracker.total(115) == 5
    tracker.update(True, 120)  # still stopped
    tracker.update(False, 130)
    assert not tracker.paused and tracker.total(200) == 20


def test_fast_check_runs_plugin_tasks(tmp_path):
    fast = SimpleNamespace(fast_monitor_tasks=lambda job: ErrorCodes.NOSUCHPROCESS)
    watched = watched_job(tmp_path, ctx=make_ctx(tmp_path, user=FakeUser(monitoring=fast)))
    check = FastCheck(watched)
    assert watched.pause is not None
    assert check.run(time.monotonic()).code == ErrorCodes.NOSUCHPROCESS
    assert not watched.pause.paused  # no payload process: not stopped


# ---------------------------------------------------------------------------- memory
def test_memory_limit_sources(tmp_path, settings):
    settings(memory_limit_factor=2)
    job = make_job(tmp_path, coreCount="8", minRamCount="3000")
    assert memory_limit_kb(job, SimpleNamespace(maxrss=2000, corecount=4))[0] == 2 * 2000 * 2 * 1024
    limit, source = memory_limit_kb(job, SimpleNamespace(maxrss=0, corecount=1))
    assert limit == 2 * 3000 * 1024 and "minRamCount" in source
    job.minramcount = 0
    assert memory_limit_kb(job, SimpleNamespace(maxrss=0, corecount=1)) == (0, "")
    settings(memory_limit_factor=0)
    assert memory_limit_kb(job, SimpleNamespace(maxrss=2000, corecount=1)) == (0, "")


class FakeMonitor:
    def __init__(self, pss):
        self.pss = pss
        self.samples = 0
        self.stopped = False

    def sample(self):
        self.samples += 1
        return {}

    def summary(self):
        return {"Max": {"pss": self.pss, "rss": self.pss + 10, "vmem": 5, "swap": 0, "rchar": 7, "wtime": 10},
                "Avg": {"pss": self.pss // 2, "rss": 1, "vmem": 2, "swap": 0, "rchar": 3}}

    def stop(self):
        self.stopped = True


def test_memory_check_verdict(tmp_path, settings):
    settings(memory_limit_factor=2)
    ctx = make_ctx(tmp_path, queuedata=SimpleNamespace(maxrss=100, corecount=1))
    watched = watched_job(tmp_path, ctx=ctx)
    check = MemoryCheck(watched, FakeMonitor(pss=150 * 1024))
    assert check.limit_kb == 200 * 1024
    assert check.run(time.monotonic()) is None
    check.monitor.pss = 250 * 1024
    verdict = check.run(time.monotonic())
    assert verdict.code == ErrorCodes.PAYLOADEXCEEDMAXMEM and "256000 kB > 204800 kB" in verdict.diag


def test_memory_plugin_check_is_asked_when_allowed(tmp_path):
    plugin = SimpleNamespace(allow_memory_usage_verifications=lambda: True,
                             memory_usage=lambda job: (ErrorCodes.PAYLOADEXCEEDMAXMEM, "plug-in says so"))
    watched = watched_job(tmp_path, ctx=make_ctx(tmp_path, user=FakeUser(memory=plugin)))
    verdict = MemoryCheck(watched, FakeMonitor(pss=1)).run(time.monotonic())
    assert verdict == Verdict(ErrorCodes.PAYLOADEXCEEDMAXMEM, "plug-in says so")
    plugin.memory_usage = lambda job: (ErrorCodes.BADMEMORYMONITORJSON, "unreadable")
    assert MemoryCheck(watched, FakeMonitor(pss=1)).run(time.monotonic()) is None


def test_memory_sampler_publishes_fields(tmp_path):
    watched = watched_job(tmp_path)
    monitor = FakeMonitor(pss=4000)
    sampler = MemorySampler(watched, monitor)
    assert sampler.due(time.monotonic())  # the first sample is taken at once
    sampler.run_if_due(time.monotonic())
    fields = watched.job.memory_summary
    assert fields["maxPSS"] == 4000 and fields["maxRSS"] == 4010 and fields["avgPSS"] == 2000
    assert fields["totRCHAR"] == 7 and fields["rateRCHAR"] == 3
    sampler.close()
    assert monitor.stopped


def test_summary_fields_from_prmon_summary():
    fields = summary_fields({"Max": {"pss": 1, "rss": 2, "swap": 3, "vmem": 4, "rchar": 5, "wchar": 6,
                                     "read_bytes": 7, "write_bytes": 8},
                             "Avg": {"pss": 9, "rss": 10, "swap": 11, "vmem": 12, "rchar": 13}})
    assert fields == {"maxPSS": 1, "maxRSS": 2, "maxSWAP": 3, "maxVMEM": 4, "avgPSS": 9, "avgRSS": 10, "avgSWAP": 11,
                      "avgVMEM": 12, "totRCHAR": 5, "totWCHAR": 6, "totRBYTES": 7, "totWBYTES": 8, "rateRCHAR": 13}


def test_leak_goes_into_job_metrics(tmp_path):
    watched = watched_job(tmp_path)
    rows = "".join(f"{1000 + t}\t{100 + 3 * t}\t0\n" for t in range(20))
    (tmp_path / "job" / "memory_monitor_output.txt").write_text("Time\tpss\tswap\n" + rows)
    MemorySampler(watched, FakeMonitor(pss=1)).run(time.monotonic())
    assert watched.job.extra_metrics["leak"] == "3.00" and watched.job.extra_metrics["chi2"] == "0.00"


# ---------------------------------------------------------------------------- disk
def test_disk_payload_stdout(tmp_path, settings):
    settings(local_size_limit_stdout=1, free_space_limit_running="1 MB")
    watched = watched_job(tmp_path)
    (tmp_path / "job" / "payload.stdout").write_bytes(b"x" * 2000)
    verdict = DiskCheck(watched, free_space=lambda p: 10 ** 12).run(0)
    assert verdict.code == ErrorCodes.STDOUTTOOBIG


def test_disk_free_space(tmp_path, settings):
    settings(free_space_limit_running="1 GB")
    watched = watched_job(tmp_path)
    assert DiskCheck(watched, free_space=lambda p: 10 ** 12).run(0) is None
    verdict = DiskCheck(watched, free_space=lambda p: 1024).run(0)
    assert verdict.code == ErrorCodes.NOLOCALSPACE


def test_disk_workdir_size_from_queue_maxwdir(tmp_path, settings):
    settings(workdir_size_margin=10)
    ctx = make_ctx(tmp_path, queuedata=SimpleNamespace(maxwdir=1, maxrss=0, corecount=1))
    watched = watched_job(tmp_path, ctx=ctx)
    check = DiskCheck(watched, free_space=lambda p: 10 ** 12)
    assert check.max_workdir == int(1.1 * 1024 * 1024)
    (tmp_path / "job" / "small.dat").write_bytes(os.urandom(100_000))
    assert check.run(0) is None and watched.job.extra_metrics["workDirSize"] >= 100_000
    (tmp_path / "job" / "big.dat").write_bytes(os.urandom(2_000_000))
    assert check.run(0).code == ErrorCodes.USERDIRTOOLARGE


def test_disk_usage_counts_blocks_not_apparent_size(tmp_path):
    with open(tmp_path / "sparse", "wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    os.symlink("/usr", tmp_path / "link")
    used, count = disk_usage(str(tmp_path))
    assert used < 1024 * 1024 and count == 2


def test_disk_workdir_limit_without_maxwdir(settings):
    settings(maximum_input_file_sizes="10 MB", local_size_limit_stdout=100)
    limit, source = max_workdir_size(SimpleNamespace(maxwdir=0))
    assert limit == 10 * 1024 * 1024 + 100 * 1024 and "maximum_input_file_sizes" in source


def test_disk_output_file_size(tmp_path, settings):
    settings(maximum_output_file_size="1 kB")
    watched = watched_job(tmp_path)
    (tmp_path / "job" / "other.dat").write_bytes(b"x" * 5000)  # not an output
    check = DiskCheck(watched, free_space=lambda p: 10 ** 12)
    assert check.run(0) is None
    (tmp_path / "job" / "out.root").write_bytes(b"x" * 5000)
    verdict = check.run(0)
    assert verdict.code == ErrorCodes.OUTPUTFILETOOLARGE and "out.root" in verdict.diag


# ---------------------------------------------------------------------------- kill file
def test_kill_instruction_file(tmp_path):
    watched = watched_job(tmp_path)
    check = KillFileCheck(watched)
    assert check.run(0) is None
    instruction = tmp_path / "pilot_kill_payload"  # the pilot's main work dir
    instruction.write_text("")
    verdict = check.run(0)
    assert verdict.code == ErrorCodes.KILLPAYLOAD and not instruction.exists()
    (tmp_path / "job" / "pilot_kill_payload").write_text("")  # the job's work dir
    assert check.run(0).code == ErrorCodes.KILLPAYLOAD


# ---------------------------------------------------------------------------- lifetime
def test_lifetime_deadlines_with_a_margin(settings):
    settings(lifetime_safety_margin=600)
    clock = {"wall": 1000.0, "mono": 50.0}
    life = Lifetime(3600, start_wall=1000.0, wall=lambda: clock["wall"], monotonic=lambda: clock["mono"])
    assert life.soft_deadline == 3000 and life.hard_deadline == 3300
    clock.update(wall=3999.0, mono=3049.0)
    assert life.elapsed() == 2999 and not life.soft_reached()
    clock.update(wall=4001.0, mono=3051.0)
    assert life.soft_reached() and not life.hard_reached() and life.remaining() == -1
    clock.update(wall=4300.0, mono=3350.0)
    assert life.hard_reached()
    assert safety_margin(100) == 50  # never more than half of the limit


def test_lifetime_ignores_a_clock_set_back(settings):
    settings(lifetime_safety_margin=10)
    clock = {"wall": 1000.0, "mono": 0.0}
    life = Lifetime(100, start_wall=1000.0, wall=lambda: clock["wall"], monotonic=lambda: clock["mono"])
    clock.update(wall=500.0, mono=95.0)  # wall clock set back by 500 s
    assert life.elapsed() == 95.0 and life.soft_reached()
    clock.update(wall=1099.0, mono=50.0)  # wall clock jumped forward: the larger elapsed time counts
    assert life.elapsed() == 99.0


def test_walltime_check(tmp_path, settings):
    settings(lifetime_safety_margin=600)
    watched = watched_job(tmp_path, maxWalltime="100")
    watched.job.starttime = time.time() - 49
    check = WalltimeCheck(watched)
    assert check.run(0) is None  # margin = 50 s (half the limit)
    watched.job.starttime = time.time() - 51
    check = WalltimeCheck(watched)
    assert check.run(0).code == ErrorCodes.REACHEDMAXTIME
    watched.job.maxwalltime = 0
    assert WalltimeCheck(watched).run(0) is None


# ---------------------------------------------------------------------------- proxy
def test_proxy_check(tmp_path):
    answers = []
    proxy = SimpleNamespace(verify_proxy=lambda **kw: answers.pop(0))
    ctx = make_ctx(tmp_path, user=FakeUser(proxy=proxy))
    check = ProxyCheck()
    assert check(ctx) is None  # no payload running: nothing asked
    ctx.executors["1"] = FakeExecutor()
    answers += [(0, ""), (ErrorCodes.VOMSPROXYABOUTTOEXPIRE, "about to expire")]
    assert check(ctx) is None
    assert check(ctx) == Verdict(ErrorCodes.VOMSPROXYABOUTTOEXPIRE, "about to expire")
    answers.append((ErrorCodes.NOPROXY, "gone"))
    assert check(ctx).code == ErrorCodes.NOPROXY  # a credential that disappears is an error


def test_proxy_check_without_any_credential_switches_off(tmp_path):
    calls = []
    proxy = SimpleNamespace(verify_proxy=lambda **kw: calls.append(kw) or (ErrorCodes.NOPROXY, "none"))
    ctx = make_ctx(tmp_path, user=FakeUser(proxy=proxy))
    ctx.executors["1"] = FakeExecutor()
    check = ProxyCheck()
    assert check(ctx) is None and check(ctx) is None and len(calls) == 1
    ctx.args.verify_proxy = False
    assert ProxyCheck()(ctx) is None
