"""A full disk loses nothing: real pilots on small real file systems (tmpfs mounts) that fill up.

- during the payload: the payload fills the pilot's disk; the job ends with its log on storage or
  with a precise code (1320: no log tarball, 1098: the disk check), the recovery record and the
  outbox cannot be written, the final update reaches the server from memory and the pilot ends;
- during stage-out: the destination storage is full; the output's copy fails with 1333
  NOREMOTESPACE (Pilot 2's code for "no space left" on a put), the job is held for a later pilot,
  the pilot ends;
- during the outbox write: the outbox is full; the final update is sent from memory, and when the
  server does not take it either, the outbox write is retried until the disk has room again, so the
  next pilot delivers it, without a second stage-out.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job, storage_path
from tests.e2e.conftest import wait_for_file

BOUND = 120  # seconds: "does not hang"
#: the small file systems are far below the shipped free-space limits, which would refuse every job
SMALL_DISK = "\n[Pilot]\nfree_space_limit: 64 kB\nfree_space_limit_running: 1 kB\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs: needs root")


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A real small file system at ``path`` for the duration of the block."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path, name: str = "filler") -> Path:
    """Write zeros into ``directory`` until the file system refuses (ENOSPC)."""
    path = directory / name
    with open(path, "wb", buffering=0) as handle:
        for size in (1 << 16, 4096, 512, 1):  # big blocks first, then whatever is left
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError:
                continue
    return path


def _final(devserver, pandaid) -> dict:
    return devserver.wait_final(pandaid, timeout=30)["final_update"]


def test_disk_filled_by_the_payload(devserver, start_pilot, tmp_path):
    with tmpfs(tmp_path / "disk", "16m") as disk:
        job = sample_job(devserver.storage_dir)
        out = job["outFiles"].split(",")[0]
        job["jobPars"] = (f"-c 'cat dev.input.*txt | wc -c > {out}; dd if=/dev/zero of=fill bs=1M 2>/dev/null; "
                          "exit 0'")
        pandaid = devserver.submit(job)
        site = disk / "site"
        site.mkdir()
        (site / "pilot.stderr").symlink_to(tmp_path / "pilot.stderr")  # the test reads the log: not on the full disk
        start = time.monotonic()
        run = start_pilot(workdir=site, config_text=SMALL_DISK)
        run.wait(BOUND)
        assert time.monotonic() - start < BOUND
        log = run.log_text()
        final = _final(devserver, pandaid)
        if final["state"] == "finished":  # the room the pilot freed (the inputs go) took the small log
            assert storage_path(devserver.storage_dir, job["scopeLog"], job["logFile"]).exists()
        else:  # the log tarball could not be written (1320), or the disk check caught the payload (1098)
            assert final["state"] == "failed", log[-3000:]
            assert int(final["pilotErrorCode"]) in (ErrorCodes.LOGFILECREATIONFAILURE, ErrorCodes.NOLOCALSPACE), \
                (final["pilotErrorDiag"], log[-3000:])
        assert "cannot write its recovery record" in log  # the disk was full after the payload
        assert not list((site / "pilot_outbox").glob("*.final.json"))  # delivered: nothing left behind
        assert (site / "pilot_ledger" / f"{pandaid}.acked").exists()  # an inode fits where a block does not


def test_storage_full_during_stage_out(devserver, start_pilot, tmp_path):
    full = Path(devserver.storage_dir) / "fullscope"
    with tmpfs(full, "1m"):
        fill(full)
        job = sample_job(devserver.storage_dir, overrides={"scopeOut": "fullscope"})
        pandaid = devserver.submit(job)
        site = tmp_path / "site"
        run = start_pilot(workdir=site)
        start = time.monotonic()
        run.wait(BOUND)  # the pilot ends
        assert time.monotonic() - start < BOUND
        log = run.log_text()
        updates = devserver.updates(pandaid)
        assert updates[-1]["fields"]["state"] == "holding", log[-3000:]
        record = json.loads((site / "pilot_recovery" / f"{pandaid}.json").read_text())
        assert [e[0] for e in record["errors"]] == [ErrorCodes.NOREMOTESPACE], record["errors"]
        assert "no space left on device" in record["errors"][0][1].lower()


def test_outbox_full_final_update_sent_from_memory(devserver, start_pilot, tmp_path):
    site = tmp_path / "site"
    with tmpfs(site / "pilot_outbox", "1m") as outbox:
        fill(outbox)
        pandaid = devserver.submit(sample_job(devserver.storage_dir))
        run = start_pilot(workdir=site)
        assert run.wait(BOUND) == 0, run.log_text()[-3000:]
        assert _final(devserver, pandaid)["state"] == "finished"
        log = run.log_text()
        assert "cannot store the final update in the outbox" in log
        assert not (site / "pilot_recovery" / f"{pandaid}.json").exists()
        assert (site / "pilot_ledger" / f"{pandaid}.acked").exists()


def test_outbox_full_and_server_refusing_retries_the_outbox_write(devserver, start_pilot, tmp_path):
    site = tmp_path / "site"
    with tmpfs(site / "pilot_outbox", "1m") as outbox:
        filler = fill(outbox)
        pandaid = devserver.submit(sample_job(devserver.storage_dir))
        devserver.inject(method="updateJob", action="status", status=503, after=2, count=100000)
        run = start_pilot(workdir=site, config_text="\n[Pilot]\nhttp_retries: 6\nhttp_backoff: 1\n")
        deadline = time.monotonic() + BOUND
        while "cannot store the final update" not in run.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        filler.unlink()  # room again while the pilot still tries to send
        run.wait(BOUND)
        log = run.log_text()
        assert "cannot store the final update" in log
        assert devserver.job(pandaid)["state"] not in ("finished", "failed")
        stored = outbox / f"{pandaid}.final.json"
        assert wait_for_file(stored, 1), log[-3000:]  # the write was retried once there was room
        assert json.loads(stored.read_text())["fields"]["state"] == "finished"
        traces = len(devserver.traces())

        devserver.clear_injections()
        second = start_pilot(workdir=site)
        second.wait(BOUND)
        assert _final(devserver, pandaid)["state"] == "finished"
        assert not stored.exists()
        assert "recovering job" not in second.log_text()
        assert len(devserver.traces()) == traces  # not staged out again
