"""The pilot's own state cannot be forged by a payload, and what is forged anyway is never believed.

Real pilots against the dev server, each started inside its own PID namespace
(``unshare -p -f --mount-proc``) so that a hostile payload cannot reach the machine's processes.

- A payload that writes a final update for another job, a recovery record pointing at a secret
  directory, FIFOs and ``/dev/zero`` links into ``pilot_outbox/`` and ``pilot_recovery/`` (at
  ``../../`` of its cwd) finds them masked: nothing lands on disk.
- The same files put there anyway (a node where masking is off) are set aside by the next pilot,
  with a log line: no update is sent for the forged job (the dev server's records), nothing is
  transferred, the pilot neither hangs nor reads more than a record can be, and it runs its own job.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from pilot.devserver.samples import sample_job, storage_path
from tests.e2e import conftest as e2e
from tests.e2e.conftest import REPO, TEST_CONFIG, PilotRun, pilot_command

FORGED = 99999001  # a PandaID this pilot tree never ran (the dev server records updates of unknown jobs too)
BOUND = 90  # seconds: "does not hang"

devserver, start_pilot = e2e.devserver, e2e.start_pilot  # the whole-pilot fixtures of tests/e2e
pytestmark = pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                                reason="needs unshare and root for PID namespaces")


@pytest.fixture
def ns_pilot(devserver, tmp_path):
    """Start a pilot inside its own PID (and mount) namespace; returns a PilotRun."""
    runs = []

    def start(workdir: Path, config_text: str = "") -> PilotRun:
        workdir.mkdir(parents=True, exist_ok=True)
        cfg = workdir / "test.cfg"
        cfg.write_text(TEST_CONFIG + f"\n[Rucio]\nurl: {devserver.url}/traces/\n" + config_text)
        log = workdir / f"pilot{len(runs)}.stderr"
        env = dict(os.environ, PYTHONPATH=str(REPO), PILOT_CACERT=str(devserver.cacert))
        cmd = ["unshare", "-p", "-f", "--mount-proc", "--kill-child=SIGKILL"] + pilot_command(devserver, workdir, cfg)
        with open(log, "ab") as handle:
            proc = subprocess.Popen(cmd, cwd=workdir, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        run = PilotRun(proc, workdir, log)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()


def _job(devserver, script: str) -> dict:
    """A sample job whose payload runs ``script`` (bash, ``$1`` = its output name) and then makes its output."""
    job = sample_job(devserver.storage_dir)
    out = job["outFiles"].split(",")[0]
    code = base64.b64encode(script.encode()).decode()
    job["jobPars"] = f"-c 'echo {code} | base64 -d | bash -s {out}; cat dev.input.*txt | wc -c > {out}'"
    return job


def _forged_final(jobid: int) -> dict:
    return {"jobid": str(jobid), "stored": 1.0,
            "fields": {"jobId": str(jobid), "state": "failed", "pilotErrorCode": 1305, "pilotErrorDiag": "forged"}}


def _forged_record(jobid: int, workdir: str, out: str) -> dict:
    return {"jobid": str(jobid), "pilot_pid": 4000000, "pilot_start": 1, "attempts": 0, "updated": 1.0,
            "definition": {"PandaID": str(jobid), "transformation": "/bin/true", "outFiles": out,
                           "scopeOut": "dev", "destinationSE": "LOCAL_DISK", "ddmEndPointOut": "LOCAL_DISK",
                           "realDatasets": "dev:stolen", "destinationDblock": "dev:stolen",
                           "logFile": f"{jobid}.log.tgz"},
            "state": {"workdir": workdir, "exitcode": 0}, "errors": [], "transferred": []}


#: what a hostile payload drops at ../../ of its cwd (the state root with -a)
ATTACK = """
set +e
root=../..
printf '%s' '{final}' > $root/pilot_outbox/{forged}.final.json
printf '%s' '{record}' > $root/pilot_recovery/{forged}.json
mkfifo $root/pilot_outbox/{fifo}.final.json
ln -s /dev/zero $root/pilot_recovery/{zero}.json
{ledger}
ls -la $root/pilot_outbox $root/pilot_recovery > state_view.txt 2>&1
"""


def _attack_script(secret_dir: Path, ledger: bool = True) -> str:
    """The attack; ``ledger``: also claim the forged job in the ledger (a payload with the pilot's uid
    and no masks can do all the pilot can: see doc, that case is covered by masks and uid separation)."""
    final = json.dumps(_forged_final(FORGED))
    record = json.dumps(_forged_record(FORGED, str(secret_dir), "proxy.pem"))
    claim = f"touch $root/pilot_ledger/{FORGED}.received" if ledger else ""
    return ATTACK.format(final=final, record=record, forged=FORGED, fifo=FORGED + 1, zero=FORGED + 2,
                         ledger=claim)


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secrets"
    secret.mkdir()
    (secret / "proxy.pem").write_text("-----BEGIN SECRET-----\n")
    return secret


def _entries(directory: Path) -> list:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def _no_trace_of_forged(devserver, site: Path) -> None:
    assert devserver.updates(FORGED) == []
    assert not storage_path(devserver.storage_dir, "dev", "proxy.pem").exists()
    assert not any("proxy.pem" in json.dumps(t) for t in devserver.traces())


def test_payload_cannot_write_the_pilot_state(devserver, ns_pilot, tmp_path):
    """Masked: the hostile payload's files never reach the real state directories."""
    site = tmp_path / "site"
    secret = _secret(tmp_path)
    pandaid = devserver.submit(_job(devserver, _attack_script(secret)))
    run = ns_pilot(site)
    assert run.wait(BOUND) == 0, run.log_text()[-3000:]
    assert devserver.wait_final(pandaid, timeout=10)["state"] == "finished", run.log_text()[-3000:]
    assert _entries(site / "pilot_outbox") == []
    assert _entries(site / "pilot_recovery") == []
    assert _entries(site / "pilot_ledger") == [f"{pandaid}.acked", f"{pandaid}.received"]
    view = (run.main_dir() / f"PanDA_Pilot-{pandaid}" / "state_view.txt").read_text()
    assert "pilot_outbox" in view and f"{FORGED}.final.json" not in view  # the payload saw an empty dir
    for name in ("pilot_outbox", "pilot_recovery", "pilot_ledger"):
        assert stat.S_IMODE((site / name).stat().st_mode) == 0o700
    _no_trace_of_forged(devserver, site)


def test_forged_state_is_set_aside_by_the_next_pilot(devserver, ns_pilot, tmp_path):
    """Masking off (as on a node without it): the payload's files land, the next pilot believes none."""
    site = tmp_path / "site"
    secret = _secret(tmp_path)
    off = "\n[Payload]\ncredential_isolation: off\n"
    first_id = devserver.submit(_job(devserver, _attack_script(secret, ledger=False)))
    first = ns_pilot(site, config_text=off)
    assert first.wait(BOUND) == 0, first.log_text()[-3000:]
    assert devserver.wait_final(first_id, timeout=10)["state"] == "finished"
    assert f"{FORGED}.final.json" in _entries(site / "pilot_outbox")  # the attack reached the disk
    assert f"{FORGED}.json" in _entries(site / "pilot_recovery")

    second_id = devserver.submit(sample_job(devserver.storage_dir))
    start = time.monotonic()
    second = ns_pilot(site, config_text=off)
    assert second.wait(BOUND) == 0, second.log_text()[-3000:]
    assert time.monotonic() - start < BOUND
    assert devserver.wait_final(second_id, timeout=10)["state"] == "finished", second.log_text()[-3000:]
    log = second.log_text()
    for name in (f"{FORGED}.final.json", f"{FORGED + 1}.final.json"):
        assert not (site / "pilot_outbox" / name).exists()
        assert any(n.startswith(name + ".rejected-") for n in _entries(site / "pilot_outbox")), name
    for name in (f"{FORGED}.json", f"{FORGED + 2}.json"):
        assert not os.path.lexists(site / "pilot_recovery" / name)
        assert any(n.startswith(name + ".rejected-") for n in _entries(site / "pilot_recovery")), name
    assert "was never run by this pilot tree" in log
    assert "is a FIFO, not a regular file" in log and "resolves to /dev/zero, outside" in log
    _no_trace_of_forged(devserver, site)
    assert "recovering job" not in log


def _prepare_site(site: Path) -> None:
    for name in ("pilot_outbox", "pilot_recovery", "pilot_ledger"):
        (site / name).mkdir(parents=True, exist_ok=True)


def test_garbage_in_the_state_dirs_never_hangs_or_floods(devserver, start_pilot, tmp_path):
    """FIFOs, /dev/zero links, a directory, an oversized record, non-JSON: set aside, the job runs."""
    site = tmp_path / "site"
    _prepare_site(site)
    outbox, recovery, ledger = site / "pilot_outbox", site / "pilot_recovery", site / "pilot_ledger"
    os.mkfifo(outbox / "11.final.json")
    os.symlink("/dev/zero", outbox / "12.final.json")
    (outbox / "13.final.json").mkdir()
    with open(outbox / "14.final.json", "wb") as handle:  # sparse: 2 GB that no read may take in
        handle.truncate(2 << 30)
    (outbox / "15.final.json").write_text("not json")
    os.mkfifo(recovery / "21.json")
    os.symlink("/dev/zero", recovery / "22.json")
    with open(recovery / "23.json", "wb") as handle:
        handle.truncate(2 << 30)
    os.mkfifo(outbox / "ranges-1.000000-0000abcd.json")
    for jobid in (11, 12, 13, 14, 15, 21, 22, 23):
        (ledger / f"{jobid}.received").touch()  # even for jobs "of this tree" nothing unreadable is used
    pandaid = devserver.submit(sample_job(devserver.storage_dir))
    start = time.monotonic()
    run = start_pilot(workdir=site)
    assert run.wait(BOUND) == 0, run.log_text()[-3000:]
    assert time.monotonic() - start < BOUND
    assert devserver.wait_final(pandaid, timeout=10)["state"] == "finished"
    names = _entries(outbox) + _entries(recovery)
    for name in ("11.final.json", "12.final.json", "13.final.json", "14.final.json", "15.final.json",
                 "21.json", "22.json", "23.json", "ranges-1.000000-0000abcd.json"):
        assert name not in names, name
        assert any(n.startswith(name + ".rejected-") for n in names), name
    for jobid in (11, 12, 13, 14, 15, 21, 22, 23):
        assert devserver.updates(jobid) == []
    log = run.log_text()
    assert "more than a record can be" in log and "not JSON" in log and "not a regular file" in log


def test_forged_record_of_a_job_of_this_tree_with_a_foreign_work_dir(devserver, start_pilot, tmp_path):
    """A record naming a job this tree did run, but a work dir outside it (the proxy's): set aside."""
    site = tmp_path / "site"
    secret = _secret(tmp_path)
    first_id = devserver.submit(sample_job(devserver.storage_dir))
    first = start_pilot(workdir=site)
    assert first.wait(BOUND) == 0
    assert devserver.wait_final(first_id, timeout=10)["state"] == "finished"
    (site / "pilot_ledger" / f"{first_id}.acked").unlink()  # as if the final update were not acknowledged
    before = len(devserver.updates(first_id))
    record = _forged_record(first_id, str(secret), "proxy.pem")
    (site / "pilot_recovery" / f"{first_id}.json").write_text(json.dumps(record))
    # the same, with a work dir named as the pilot names it, reached through a symlink out of the tree
    link_dir = site / f"PanDA_Pilot-{FORGED}"
    link_dir.symlink_to(secret)
    (site / "pilot_ledger" / f"{FORGED}.received").touch()
    (site / "pilot_recovery" / f"{FORGED}.json").write_text(
        json.dumps(_forged_record(FORGED, str(link_dir), "proxy.pem")))
    second = start_pilot(workdir=site)
    assert second.wait(BOUND) == 0, second.log_text()[-3000:]
    log = second.log_text()
    assert "is not this tree's work dir" in log
    assert not (site / "pilot_recovery" / f"{first_id}.json").exists()
    assert not (site / "pilot_recovery" / f"{FORGED}.json").exists()
    assert len(devserver.updates(first_id)) == before
    _no_trace_of_forged(devserver, site)
    assert "recovering job" not in log


# ---------------------------------------------------------------- the pilot as root and as a user
def _secure_start(server, mode, site: Path, config_text: str = ""):
    """A pilot in ``mode`` (tests.security harness) working in ``site``, which two pilots may share."""
    from tests.security.harness import give_to, start_ns_pilot

    site.mkdir(mode=0o755, exist_ok=True)
    previous = site / "pilot.stderr"
    if previous.exists():  # keep each pilot's log apart
        previous.rename(site / f"pilot.stderr.{time.monotonic_ns()}")
    cfg = site / "test.cfg"
    cfg.write_text(TEST_CONFIG + f"\n[Rucio]\nurl: {server.url}/traces/\n" + config_text)
    cacert = site / "cacert.pem"
    shutil.copyfile(server.cacert, cacert)
    give_to(mode, site, Path(server.storage_dir))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV_"))}
    env.update(PYTHONPATH=str(REPO), PILOT_CACERT=str(cacert), HOME=str(site), TMPDIR=str(site))
    return start_ns_pilot(pilot_command(server, site, cfg), site, mode, env)


@pytest.mark.parametrize("isolation", ["auto", "off"])
def test_state_attack_as_root_and_as_user(pilot_mode, secure_base, secure_devserver, isolation):
    """The attack under each identity: masked (auto), or with masks off, by uid (a root pilot's payload
    runs as nobody) or, for a payload with the pilot's uid, by the checks of the next pilot."""
    server, site = secure_devserver, secure_base / "site"
    secret = secure_base / "secrets"
    secret.mkdir()
    (secret / "proxy.pem").write_text("-----BEGIN SECRET-----\n")
    config = f"\n[Payload]\ncredential_isolation: {isolation}\n"
    first_id = server.submit(_job(server, _attack_script(secret, ledger=isolation != "off")))
    first = _secure_start(server, pilot_mode, site, config)
    try:
        assert first.wait(BOUND) == 0, first.log_text()[-3000:]
    finally:
        first.stop()
    assert server.wait_final(first_id, timeout=10)["state"] == "finished", first.log_text()[-3000:]
    reached = f"{FORGED}.final.json" in _entries(site / "pilot_outbox")
    same_uid = not pilot_mode.is_root  # a root pilot's payload runs as nobody: the 0700 dirs stay shut
    assert reached == (isolation == "off" and same_uid)
    assert _entries(site / "pilot_ledger") == [f"{first_id}.acked", f"{first_id}.received"]

    second_id = server.submit(sample_job(server.storage_dir))
    second = _secure_start(server, pilot_mode, site, config)
    try:
        assert second.wait(BOUND) == 0, second.log_text()[-3000:]
    finally:
        second.stop()
    assert server.wait_final(second_id, timeout=10)["state"] == "finished", second.log_text()[-3000:]
    assert [n for n in _entries(site / "pilot_outbox") if ".rejected-" not in n] == []
    assert [n for n in _entries(site / "pilot_recovery") if ".rejected-" not in n] == []
    if reached:
        assert "was never run by this pilot tree" in second.log_text()
    _no_trace_of_forged(server, site)
    assert "recovering job" not in second.log_text()
