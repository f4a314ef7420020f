"""Whole pilot runs with payloads that trip each job check: the verdict and its code reach the dev server.

Limits are made small through the config (and the dev server's queue data) so each run takes a few
seconds. One verdict per pilot run.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job
from tests.payload_procs import host_pids, wait_gone

from ..conftest import wait_for_file

#: every check often, the memory monitor internal (prmon is not assumed)
FAST = {
    "heartbeat": 3, "debug_heartbeat": 0.5, "thread_check": 0.5, "fast_monitor_time": 0.3,
    "kill_instruction_time": 0.5, "disk_space_verification_time": 0.5, "memory_monitor": "internal",
    "memory_monitor_interval": 0.5, "memory_usage_verification_time": 0.5, "free_space_limit_running": "1 MB",
}


def fast(**overrides) -> str:
    """The [Pilot] section for a test: FAST with ``overrides``."""
    values = dict(FAST, **overrides)
    return "[Pilot]\n" + "".join(f"{key}: {value}\n" for key, value in values.items())


QUEUE = "DEV_QUEUE"
TOOLS = f"{sys.executable} {Path(__file__).resolve().parent / 'payload_tools.py'}"


def submit(devserver, script: str, **overrides) -> tuple:
    """Submit a sample job whose payload is ``bash -c <script>``; ``{out}`` in the script is its output file."""
    job = sample_job(devserver.storage_dir)
    out = job["outFiles"].split(",")[0]
    job["jobPars"] = "-c '" + script.replace("{out}", out) + "'"
    job["maxCpuCount"] = "0"
    job.update(overrides)
    return devserver.submit(job), job


def final_of(devserver, pandaid: int, run, timeout: float = 60) -> dict:
    run.wait(timeout + 30)
    record = devserver.wait_final(pandaid, timeout=timeout)
    assert record["final_update"], run.log_text()[-3000:]
    return devserver.updates(pandaid)[-1]["fields"]


def outputs(final: dict) -> dict:
    return json.loads(final["xml"]) if final.get("xml") else {}


def gone(pid: int, workdir: Path, timeout: float = 5.0) -> bool:
    """No process of the job at ``pid`` is left (the PID the payload wrote: its own namespace's)."""
    return wait_gone(pid, environ=f"PILOT_JOB_WORKDIR={workdir}", timeout=timeout)


def wait_for_update(devserver, pandaid: int, predicate, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for update in devserver.updates(pandaid):
            if predicate(update["fields"]):
                return update
        time.sleep(0.2)
    raise AssertionError(f"no update of job {pandaid} matched within {timeout} s")


def assert_failed(final: dict, code: int, run) -> None:
    assert final["state"] == "failed", run.log_text()[-3000:]
    assert int(final["pilotErrorCode"]) == code, (final["pilotErrorCode"], final.get("pilotErrorDiag"),
                                                  run.log_text()[-3000:])


def test_looping_payload(devserver, start_pilot):
    pandaid, job = submit(devserver, "echo $$ > payload.pid; echo started > {out}; sleep 120")
    run = start_pilot(config_text=fast(looping_verification_time=0.5, looping_limit_default=3,
                                       looping_limit_min_default=3))
    final = final_of(devserver, pandaid, run)
    assert_failed(final, ErrorCodes.LOOPINGJOB, run)
    assert "looping" in final["pilotErrorDiag"]
    assert job["logFile"] in outputs(final)  # the log still left
    workdir = run.main_dir() / f"PanDA_Pilot-{pandaid}"
    assert gone(int((workdir / "payload.pid").read_text()), workdir)


def test_memory_hog(devserver, start_pilot):
    devserver.set_queuedata(QUEUE, {"maxrss": 20})  # limit: 2 x 20 MB
    pandaid, _ = submit(devserver, f"{TOOLS} hog 150 120")
    run = start_pilot(config_text=fast())
    final = final_of(devserver, pandaid, run)
    assert_failed(final, ErrorCodes.PAYLOADEXCEEDMAXMEM, run)
    assert "memory limit" in final["pilotErrorDiag"]
    assert int(final["maxPSS"]) > 40 * 1024 and int(final["maxRSS"]) >= int(final["maxPSS"])


def test_memory_fields_cpu_and_leak_in_updates(devserver, start_pilot):
    # enough samples of the growth that the fit drops its head and tail (allocation, release): on a loaded
    # machine the first sample can come seconds into the payload, and the last one after its memory is freed
    pandaid, _ = submit(devserver, f"{TOOLS} grow 40 2 0.25; echo ok > {{out}}")
    run = start_pilot(config_text=fast(memory_monitor_interval=0.2, heartbeat=1))
    final = final_of(devserver, pandaid, run)
    assert final["state"] == "finished", run.log_text()[-3000:]
    beats = [u["fields"] for u in devserver.updates(pandaid) if u["fields"]["state"] == "running"]
    with_memory = [b for b in beats if "maxPSS" in b]
    assert with_memory, beats
    beat = with_memory[-1]
    for key in ("maxRSS", "maxVMEM", "maxSWAP", "avgPSS", "avgRSS", "totRCHAR", "totWCHAR", "rateRCHAR"):
        assert key in beat, key
    assert "cpuConsumptionTime" in beat and beat["cpuConsumptionUnit"].startswith("s+")
    assert float(beat["cpuConversionFactor"]) == 1.0
    metrics = dict(pair.split("=", 1) for pair in final["jobMetrics"].split())
    assert float(metrics["leak"]) > 0 and "chi2" in metrics, final["jobMetrics"]
    assert int(final["maxPSS"]) > 30 * 1024


def test_payload_fills_its_disk_allowance(devserver, start_pilot):
    devserver.set_queuedata(QUEUE, {"maxwdir": 5})  # 5 MB + 10%
    pandaid, _ = submit(devserver, "dd if=/dev/zero of=big.dat bs=1M count=20 2>/dev/null; sleep 120")
    run = start_pilot(config_text=fast())
    final = final_of(devserver, pandaid, run)
    assert_failed(final, ErrorCodes.USERDIRTOOLARGE, run)
    assert "work dir is too large" in final["pilotErrorDiag"]


def test_oversized_output_file(devserver, start_pilot):
    pandaid, _ = submit(devserver, "head -c 3000000 /dev/zero > {out}; sleep 120")
    run = start_pilot(config_text=fast(maximum_output_file_size="1 MB"))
    final = final_of(devserver, pandaid, run)
    assert_failed(final, ErrorCodes.OUTPUTFILETOOLARGE, run)


def test_huge_stdout(devserver, start_pilot):
    pandaid, _ = submit(devserver, "head -c 3000000 /dev/zero | tr \"\\0\" x; sleep 120")
    run = start_pilot(config_text=fast(local_size_limit_stdout=200))
    final = final_of(devserver, pandaid, run)
    assert_failed(final, ErrorCodes.STDOUTTOOBIG, run)


def test_daemonizing_payload_leaves_nothing_behind(devserver, start_pilot):
    script = ("setsid sleep 300 & echo $! > daemon.pid; ( ( exec sleep 300 ) & echo $! > orphan.pid ); "
              f"{TOOLS} session-daemon session.pid; sleep 0.5; echo ok > {{out}}")
    pandaid, job = submit(devserver, script)
    run = start_pilot(config_text=fast())
    final = final_of(devserver, pandaid, run)
    assert final["state"] == "finished", run.log_text()[-3000:]
    assert job["outFiles"].split(",")[0] in outputs(final)
    # the pids are in the log tarball's work dir copy; read them from the job dir if it is still there
    workdir = run.main_dir() / f"PanDA_Pilot-{pandaid}"
    pids = [int((workdir / name).read_text()) for name in ("daemon.pid", "orphan.pid", "session.pid")]
    assert all(gone(pid, workdir) for pid in pids), pids


def test_stopped_and_resumed_payload_is_not_looping(devserver, start_pilot):
    script = ("echo $$ > payload.pid; for i in 1 2 3 4 5 6 7 8; do echo $i >> progress.txt; sleep 0.5; done; "
              "echo ok > {out}")
    pandaid, _ = submit(devserver, script)
    run = start_pilot(config_text=fast(looping_verification_time=0.5, looping_limit_default=3,
                                       looping_limit_min_default=3))
    pidfile = None
    deadline = time.monotonic() + 30
    while pidfile is None and time.monotonic() < deadline:
        dirs = list(run.workdir.glob(f"PanDA_Pilot2_*/PanDA_Pilot-{pandaid}/payload.pid"))
        pidfile = dirs[0] if dirs and dirs[0].read_text().strip() else None
        time.sleep(0.05)
    assert pidfile is not None, run.log_text()[-3000:]
    found = host_pids(int(pidfile.read_text()), environ=f"PILOT_JOB_WORKDIR={pidfile.parent}")
    assert len(found) == 1, found
    pid = found[0]  # its PID seen from here
    time.sleep(1.0)
    os.kill(pid, signal.SIGSTOP)
    time.sleep(5.0)  # well over the looping limit without any file update
    os.kill(pid, signal.SIGCONT)
    final = final_of(devserver, pandaid, run)
    assert final["state"] == "finished" and int(final["pilotErrorCode"]) == 0, run.log_text()[-3000:]
    assert "the payload is stopped" in run.log_text()


def test_tobekilled(devserver, start_pilot):
    pandaid, _ = submit(devserver, "echo $$ > payload.pid; sleep 120")
    run = start_pilot(config_text=fast())
    devserver.wait_state(pandaid, "running", timeout=30)
    devserver.set_command(pandaid, "tobekilled")
    final = final_of(devserver, pandaid, run)
    assert_failed(final, ErrorCodes.PANDAKILL, run)
    workdir = run.main_dir() / f"PanDA_Pilot-{pandaid}"
    assert gone(int((workdir / "payload.pid").read_text()), workdir)


def test_debug_commands(devserver, start_pilot):
    script = "for i in $(seq 1 40); do echo line $i; sleep 0.25; done; echo ok > {out}"
    pandaid, _ = submit(devserver, script)
    run = start_pilot(config_text=fast(heartbeat=1))
    devserver.wait_state(pandaid, "running", timeout=30)
    devserver.set_command(pandaid, "debug")
    wait_for_update(devserver, pandaid, lambda f: "line" in f.get("stdout", ""))
    devserver.set_command(pandaid, "ls -l")
    wait_for_update(devserver, pandaid, lambda f: f.get("stdout", "").startswith("$ ls -l") and
                    "payload.stdout" in f["stdout"])
    devserver.set_command(pandaid, "ls; touch injected")
    wait_for_update(devserver, pandaid, lambda f: "refused" in f.get("stdout", ""))
    devserver.set_command(pandaid, "debugoff")
    final = final_of(devserver, pandaid, run)
    assert final["state"] == "finished", run.log_text()[-3000:]
    updates = devserver.updates(pandaid)
    index = next(i for i, u in enumerate(updates) if u["reply_command"] == "debugoff")
    later = [u["fields"] for u in updates[index + 1:]]
    assert later and all("stdout" not in f for f in later)
    assert not list(run.workdir.glob("PanDA_Pilot2_*/PanDA_Pilot-*/injected"))


def test_kill_instruction_file(devserver, start_pilot):
    pandaid, job = submit(devserver, "echo ok > {out}; echo $$ > payload.pid; sleep 120")
    run = start_pilot(config_text=fast())
    devserver.wait_state(pandaid, "running", timeout=30)
    main = run.main_dir()
    assert wait_for_file(main / f"PanDA_Pilot-{pandaid}" / "payload.pid", 30)
    (main / "pilot_kill_payload").write_text("")
    final = final_of(devserver, pandaid, run)
    assert final["state"] == "finished" and int(final["pilotErrorCode"]) == 0, run.log_text()[-3000:]
    assert job["outFiles"].split(",")[0] in outputs(final)  # the output was staged out
    assert not (main / "pilot_kill_payload").exists()
    assert gone(int((main / f"PanDA_Pilot-{pandaid}" / "payload.pid").read_text()), main / f"PanDA_Pilot-{pandaid}")


def test_lifetime_ends_mid_payload(devserver, start_pilot):
    devserver.set_queuedata(QUEUE, {"maxtime": 0})  # the -l option decides
    pandaid, job = submit(devserver, "echo ok > {out}; sleep 120")
    start = time.time()
    run = start_pilot(extra=["-l", "10"], config_text=fast(lifetime_safety_margin=5))
    final = final_of(devserver, pandaid, run)
    reported = devserver.updates(pandaid)[-1]["time"]
    assert_failed(final, ErrorCodes.REACHEDMAXTIME, run)
    assert reported - start < 10, reported - start  # reported before the lifetime ended
    assert job["logFile"] in outputs(final)  # staged out: the log left with the job
    assert job["outFiles"].split(",")[0] in outputs(final)  # and the output the payload had produced
    assert run.proc.returncode is not None


def test_cpu_time_of_a_job_is_reported(devserver, start_pilot):
    pandaid, _ = submit(devserver, f"( ( {TOOLS} burn 1 ) & ); {TOOLS} burn 1; sleep 1.5; echo ok > {{out}}")
    run = start_pilot(config_text=fast())
    final = final_of(devserver, pandaid, run)
    assert final["state"] == "finished", run.log_text()[-3000:]
    assert int(final["cpuConsumptionTime"]) >= 2 and final["cpuConsumptionUnit"].startswith("s+")
