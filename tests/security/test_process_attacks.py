"""Process attacks by a hostile payload under a real pilot, as root and as an unprivileged pilot.

Each test runs twice (``[root]``: the pilot is root, its payload runs as ``nobody``; ``[user]``: the
pilot is the unprivileged ``pilottest``, its payload keeps that uid in a user namespace). Everything
runs inside a PID namespace of the test's own (see :mod:`tests.security.harness`), so a payload that
signals every process it can reach hurts nothing outside it.

What must hold: the payload cannot see, signal, ptrace or read the ``/proc`` of the pilot or its
guard, cannot undo the credential masks, cannot outlive its job, and a pilot killed mid-payload
takes guard and payload with it. Outcomes are exact; times are only generous "does not hang" bounds.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job

from .harness import kill_host_pid

BOUND = 180  # seconds: the pilot, the job and the clean-up together


def _job(server, script: str) -> dict:
    """The sample job with ``script`` as its payload, which then makes the job's output (so the job can succeed)."""
    assert "'" not in script, "the script goes inside -c '...'"
    job = sample_job(server.storage_dir)
    output = job["outFiles"].split(",")[0]
    job["jobPars"] = f"-c '{script}; cat dev.input.*txt | wc -c > {output}'"
    return job


@pytest.fixture
def report(secure_base):
    """A directory the payload (any uid) can write its findings to; it outlives the job's work dir."""
    path = secure_base / "report"
    path.mkdir(mode=0o777)
    path.chmod(0o777)
    return path


def _wait_for(path: Path, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            return True
        time.sleep(0.1)
    return False


def _finished(server, run, pandaid) -> dict:
    assert run.wait(BOUND) == 0, run.log_text()[-4000:]
    record = server.wait_final(pandaid, timeout=30)
    assert record["state"] == "finished", (record["final_update"], run.log_text()[-4000:])
    return record


def test_payload_cannot_kill_its_guard_nor_leave_a_daemon(secure_devserver, secure_pilot, report):
    script = (f"setsid sleep 600 < /dev/null > /dev/null 2>&1 & echo $! > {report}/daemon.pid; "
              f"kill -9 $PPID 2> {report}/kill_parent.txt; echo rc=$? >> {report}/kill_parent.txt; "
              f"kill -9 1 2> {report}/kill_init.txt; echo rc=$? >> {report}/kill_init.txt; "
              f"kill -TERM 1; sleep 1")
    pandaid = secure_devserver.submit(_job(secure_devserver, script))
    run = secure_pilot.start()
    _finished(secure_devserver, run, pandaid)
    # the payload's parent and PID 1 are its guard's init: SIGKILL from inside the namespace does nothing
    # (as nobody it is not even allowed); the payload went on and the job finished
    assert "rc=" in (report / "kill_parent.txt").read_text() and "rc=" in (report / "kill_init.txt").read_text()
    assert (report / "daemon.pid").read_text().strip().isdigit()
    assert run.wait_until_empty(30) == [], run.log_text()[-3000:]


def test_a_killed_guard_fails_the_job_and_leaves_nothing(secure_devserver, secure_pilot, pilot_mode, report):
    """Without a PID namespace (``process_isolation = off``) a payload of the pilot's uid can kill its guard.

    Its daemon is still stopped (the job's cgroup as root, the job's mark otherwise) and the job
    fails with 1310, not with the guard's signal. A root pilot's payload (nobody) cannot kill it at all.
    """
    script = (f"setsid sleep 600 < /dev/null > /dev/null 2>&1 & "
              f"echo started > {report}/started; kill -9 $PPID; echo rc=$? > {report}/kill; sleep 2")
    pandaid = secure_devserver.submit(_job(secure_devserver, script))
    run = secure_pilot.start(config_text="\n[Payload]\nprocess_isolation: off\n")
    code = run.wait(BOUND)
    final = secure_devserver.wait_final(pandaid, timeout=30)["final_update"]
    if pilot_mode.is_root:
        assert (report / "kill").read_text().strip() == "rc=1"  # not permitted
        assert code == 0 and final["state"] == "finished", run.log_text()[-3000:]
    else:
        assert code == 1 and final["state"] == "failed", run.log_text()[-3000:]
        assert int(final["pilotErrorCode"]) == ErrorCodes.PAYLOADEXECUTIONEXCEPTION, final
        assert "guard was killed" in final["pilotErrorDiag"]
    assert run.wait_until_empty(30) == [], run.log_text()[-3000:]


@pytest.mark.parametrize("isolation", ["auto", "off"])
def test_pilot_killed_mid_payload_takes_guard_and_payload_with_it(secure_devserver, secure_pilot, report, isolation):
    script = f"setsid sleep 600 < /dev/null > /dev/null 2>&1 & echo up > {report}/running; sleep 600"
    secure_devserver.submit(_job(secure_devserver, script))
    run = secure_pilot.start(config_text=f"\n[Payload]\nprocess_isolation: {isolation}\n")
    assert _wait_for(report / "running"), run.log_text()[-3000:]
    pilot = run.pilot_process()
    assert pilot is not None
    names = " ".join(p.cmdline for p in run.processes())
    assert "payloadguard" in names and "sleep 600" in names
    kill_host_pid(pilot.pid, signal.SIGKILL)
    assert run.wait(60) == -signal.SIGKILL
    left = run.wait_until_empty(45)  # fallback mode: the guard's grace (10 s) before SIGKILL
    assert left == [], left


def test_payload_cannot_reach_the_pilot(secure_devserver, secure_pilot, report):
    secret = f"tok-{uuid.uuid4().hex}"
    script = (f"ls /proc | grep -E \"^[0-9]+$\" > {report}/pids; "
              f"for p in $(cat {report}/pids); do tr \"\\\\0\" \" \" < /proc/$p/cmdline >> {report}/cmdlines; "
              f"echo >> {report}/cmdlines; cat /proc/$p/environ >> {report}/environs 2>/dev/null; "
              f"ls -l /proc/$p/root/ >> {report}/roots 2>&1; done; "
              f"kill -0 1 2> /dev/null; echo kill1=$? > {report}/signals; "
              "python3 -c \"import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
              "print(libc.ptrace(16, 1, 0, 0), ctypes.get_errno())\" > " + f"{report}/ptrace 2>&1; "
              f"echo done > {report}/done")
    pandaid = secure_devserver.submit(_job(secure_devserver, script))
    run = secure_pilot.start(env={"BEARER_TOKEN": secret})
    _finished(secure_devserver, run, pandaid)
    assert (report / "done").exists()
    pids = (report / "pids").read_text().split()
    cmdlines = (report / "cmdlines").read_text()
    assert "pilot.py" not in cmdlines and "nsinit" not in cmdlines, cmdlines  # the pilot is not even visible
    assert len(pids) <= 8, pids  # its init, its shell and what it runs itself
    assert secret.encode() not in (report / "environs").read_bytes()
    result, errno_ = (report / "ptrace").read_text().split()
    assert result == "-1" and int(errno_) in (1, 13), "PTRACE_ATTACH to the guard's init must fail"
    assert run.wait_until_empty(30) == []


def test_payload_cannot_undo_the_masks(secure_devserver, secure_pilot, pilot_mode, report, secure_base):
    secret = f"token-{uuid.uuid4().hex}"
    tokens = secure_base / "pilot-token"
    tokens.write_text(secret)
    tokens.chmod(0o600)
    os.chown(tokens, pilot_mode.uid, pilot_mode.gid)
    script = (f"id -u > {report}/uid; cat {tokens} > {report}/before 2>&1; "
              f"umount {tokens} 2> {report}/umount; umount -l {tokens} 2>> {report}/umount; "
              f"umount /proc 2>> {report}/umount; "
              f"cat {tokens} > {report}/after 2>&1; echo done > {report}/done")
    pandaid = secure_devserver.submit(_job(secure_devserver, script))
    run = secure_pilot.start(env={"BEARER_TOKEN_FILE": str(tokens)})
    _finished(secure_devserver, run, pandaid)
    assert (report / "done").exists()
    assert secret not in (report / "before").read_text() and secret not in (report / "after").read_text()
    uid = int((report / "uid").read_text())
    if pilot_mode.is_root:
        assert uid == 65534  # a root pilot's payload runs as nobody
    else:
        assert uid == pilot_mode.uid  # the unprivileged pilot's payload keeps its uid, without capabilities
    assert tokens.read_text() == secret  # and the pilot's file is untouched
    assert run.wait_until_empty(30) == []


def test_kill_minus_one_hurts_only_the_payload(secure_devserver, secure_pilot, report):
    script = (f"sleep 600 & kill -TERM -1; kill -9 -1; echo survived > {report}/done")
    pandaid = secure_devserver.submit(_job(secure_devserver, script))
    run = secure_pilot.start()
    _finished(secure_devserver, run, pandaid)  # the pilot lived on, reported and ended normally
    assert (report / "done").read_text().strip() == "survived"
    assert run.wait_until_empty(30) == []


def test_the_token_is_not_in_the_pilots_environment(secure_devserver, secure_pilot, report):
    secret = f"tok-{uuid.uuid4().hex}"
    script = f"echo up > {report}/running; sleep 3"
    pandaid = secure_devserver.submit(_job(secure_devserver, script))
    run = secure_pilot.start(env={"BEARER_TOKEN": secret})
    assert _wait_for(report / "running"), run.log_text()[-3000:]
    pilot = run.pilot_process()
    assert pilot is not None
    with open(f"/proc/{pilot.pid}/environ", "rb") as handle:
        environ = handle.read()
    assert environ and secret.encode() not in environ  # the HTTP client holds it, in memory only
    _finished(secure_devserver, run, pandaid)


def test_the_pre_and_postprocess_are_guarded_like_the_payload(secure_devserver, secure_pilot, pilot_mode, report,
                                                              secure_base):
    """The job defines its pre- and postprocess: they get the payload's uid, PID namespace and masks."""
    import json

    secret = f"token-{uuid.uuid4().hex}"
    tokens = secure_base / "pilot-token"
    tokens.write_text(secret)
    tokens.chmod(0o600)
    os.chown(tokens, pilot_mode.uid, pilot_mode.gid)
    job = _job(secure_devserver, "true")
    for label in ("preprocess", "postprocess"):
        script = (f"id -u > {report}/{label}.uid; cat {tokens} > {report}/{label}.token 2>&1; "
                  f"tr \"\\\\0\" \" \" < /proc/1/cmdline > {report}/{label}.init; echo done > {report}/{label}.done")
        job[label] = json.dumps({"command": "/bin/sh", "args": f"-c '{script}'"})
    pandaid = secure_devserver.submit(job)
    run = secure_pilot.start(env={"BEARER_TOKEN_FILE": str(tokens)})
    _finished(secure_devserver, run, pandaid)
    for label in ("preprocess", "postprocess"):
        assert (report / f"{label}.done").exists(), (label, run.log_text()[-4000:])
        assert secret not in (report / f"{label}.token").read_text(), label
        assert "pilot.py" not in (report / f"{label}.init").read_text(), label  # PID 1 is its guard's init
        uid = int((report / f"{label}.uid").read_text())
        assert uid == (65534 if pilot_mode.is_root else pilot_mode.uid), label
    assert tokens.read_text() == secret
    assert run.wait_until_empty(30) == []
