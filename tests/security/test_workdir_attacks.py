"""What a hostile payload leaves in its work dir cannot make the pilot write, read or copy what it should not.

Each test runs a real payload under a real pilot (in its own PID namespace, once as root and once as
the unprivileged test user: the ``secure_pilot`` fixture) against the dev server and its file storage
(``LOCAL_DISK``, the ``mv`` copytool), and asserts the exact outcome: the job's error code, files
outside the work dir untouched, secrets neither on storage nor in the log tarball, a bounded run time.
The codes (see ``doc``'s trust-boundary page): 1371 BADOUTPUTFILENAME for an output that is a link out
of the work dir, 1303 FILEHANDLINGFAILURE for one that is not a regular file (FIFO, directory, ...),
1221 FILEEXISTS for an output whose replica already exists with other content, 1133 NOSTORAGE for an
unknown ``ddmEndPointOut``.
"""

from __future__ import annotations

import os
import tarfile
import time
from pathlib import Path

import pytest

from pilot.common.errorcodes import ErrorCodes as E
from pilot.copytool.common import deterministic_path
from pilot.devserver.samples import sample_job

SECRET = b"-----BEGIN FAKE PROXY----- pilot-secret-7f3a9c -----END FAKE PROXY-----\n"
OUTPUT_TEXT = "payload output\n"


def submit(server, script: str, **overrides) -> tuple:
    """A job whose payload is ``script`` (bash; ``$OUT`` and ``$LOG`` name its output and log file)."""
    job = sample_job(server.storage_dir)
    out, log = job["outFiles"].split(",")[0], job["logFile"]
    job.update(jobPars=f"-c 'OUT={out}; LOG={log}; {script}'", **overrides)
    return server.submit(job), job, out, log


def on_storage(server, lfn: str) -> Path:
    return Path(server.storage_dir) / deterministic_path("dev", lfn)


def run_job(server, pilots, pandaid: int, bound: float = 90) -> tuple:
    start = time.monotonic()
    run = pilots.start()
    run.wait(bound)
    final = server.wait_final(pandaid, timeout=30)["final_update"]
    elapsed = time.monotonic() - start
    assert elapsed < bound, f"job took {elapsed:.0f} s"
    assert run.wait_until_empty(30) == []
    return run, final


def tarball_members(path: Path) -> dict:
    """``{member name: bytes}`` of the regular files in a log tarball."""
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def storage_holds(server, data: bytes) -> list:
    """Files on the dev storage whose bytes contain ``data``."""
    found = []
    for path in Path(server.storage_dir).rglob("*"):
        if path.is_file() and not path.is_symlink() and data in path.read_bytes():
            found.append(path)
    return found


@pytest.fixture
def secret(secure_base, pilot_mode):
    """A fake proxy file outside every work dir, readable by the pilot's user only (as a real proxy)."""
    path = secure_base / "x509up_fake"
    path.write_bytes(SECRET)
    os.chown(path, pilot_mode.uid, pilot_mode.gid)
    path.chmod(0o600)
    return path


@pytest.fixture
def victim(secure_base, pilot_mode):
    """A file outside the work dir the pilot's user could write: a planted link must not reach it."""
    path = secure_base / "victim.txt"
    path.write_text("precious\n")
    os.chown(path, pilot_mode.uid, pilot_mode.gid)
    path.chmod(0o666)
    return path


def test_planted_log_names_are_not_written_through(secure_devserver, secure_pilot, victim):
    pandaid, job, out, log = submit(
        secure_devserver, f'echo hi > $OUT; ln -s {victim} $LOG.part; ln -s {victim} $LOG; '
                          f'ln -s {victim} .$LOG.part')
    run, final = run_job(secure_devserver, secure_pilot, pandaid)
    assert final["state"] == "finished", run.log_text()[-3000:]
    assert victim.read_text() == "precious\n"
    members = tarball_members(on_storage(secure_devserver, log))  # a valid tarball went to storage
    assert any(name.endswith("/payload.stdout") for name in members)


def test_output_linked_to_a_secret_fails_and_leaks_nothing(secure_devserver, secure_pilot, secret):
    pandaid, job, out, log = submit(secure_devserver, f"ln -s {secret} $OUT; ln -s {secret} copy_of_proxy")
    run, final = run_job(secure_devserver, secure_pilot, pandaid)
    assert final["state"] == "failed"
    assert int(final["pilotErrorCode"]) == E.BADOUTPUTFILENAME, final["pilotErrorDiag"]
    assert "outside the work dir" in final["pilotErrorDiag"]
    assert not on_storage(secure_devserver, out).exists()
    assert storage_holds(secure_devserver, SECRET) == []
    members = tarball_members(on_storage(secure_devserver, log))
    assert not any(SECRET in data for data in members.values())
    assert not any(name.endswith("copy_of_proxy") for name in members)
    assert "copy_of_proxy left out" in run.log_text()


@pytest.mark.parametrize("make,code,words", [
    ("mkfifo $OUT", E.FILEHANDLINGFAILURE, "FIFO"),
    ("ln -s /dev/zero $OUT", E.BADOUTPUTFILENAME, "outside the work dir"),
    ("mkdir -p $OUT/sub && echo x > $OUT/sub/f", E.FILEHANDLINGFAILURE, "directory"),
], ids=["fifo", "dev-zero", "directory"])
def test_output_that_is_no_regular_file_fails_at_once(secure_devserver, secure_pilot, make, code, words):
    pandaid, job, out, log = submit(secure_devserver, make)
    run, final = run_job(secure_devserver, secure_pilot, pandaid, bound=60)
    assert final["state"] == "failed"
    assert int(final["pilotErrorCode"]) == code, final["pilotErrorDiag"]
    assert words in final["pilotErrorDiag"]
    assert not on_storage(secure_devserver, out).exists()
    assert on_storage(secure_devserver, log).is_file()  # the log still leaves


def test_special_files_in_the_work_dir_are_left_out_of_the_log(secure_devserver, secure_pilot, secret):
    script = ("echo hi > $OUT; mkfifo a_fifo; ln -s /dev/zero zero; ln -s /etc/passwd passwd; "
              f"ln -s {secret} proxy; mkdir sub; ln -s ../$OUT sub/inside; ln -s / root_dir; "
              "python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind(\\\"a_socket\\\")\"; "
              "echo kept > kept.txt")
    pandaid, job, out, log = submit(secure_devserver, script)
    run, final = run_job(secure_devserver, secure_pilot, pandaid)
    assert final["state"] == "finished", run.log_text()[-3000:]
    members = tarball_members(on_storage(secure_devserver, log))
    top = f"tarball_PandaJob_{pandaid}_DEV_QUEUE"
    assert members[f"{top}/kept.txt"] == b"kept\n"
    assert members[f"{top}/sub/inside"] == b"hi\n"  # a link to a regular file inside the work dir is followed
    for name in ("a_fifo", "zero", "passwd", "proxy", "root_dir", "a_socket"):
        assert f"{top}/{name}" not in members
        assert f"log tarball: {name} left out" in run.log_text()
    assert not any(SECRET in data for data in members.values())


def test_existing_replica_with_other_content_is_left_untouched(secure_devserver, secure_pilot, pilot_mode):
    pandaid, job, out, log = submit(secure_devserver, "echo payload output > $OUT")
    replica = on_storage(secure_devserver, out)
    replica.parent.mkdir(parents=True, exist_ok=True)
    replica.write_text("somebody else's data\n")
    run, final = run_job(secure_devserver, secure_pilot, pandaid)
    assert final["state"] == "failed"
    assert int(final["pilotErrorCode"]) == E.FILEEXISTS, final["pilotErrorDiag"]
    assert replica.read_text() == "somebody else's data\n"


def test_existing_replica_with_the_same_content_is_success(secure_devserver, secure_pilot):
    pandaid, job, out, log = submit(secure_devserver, "echo payload output > $OUT")
    replica = on_storage(secure_devserver, out)
    replica.parent.mkdir(parents=True, exist_ok=True)
    replica.write_text(OUTPUT_TEXT)
    before = replica.stat()
    run, final = run_job(secure_devserver, secure_pilot, pandaid)
    assert final["state"] == "finished", run.log_text()[-3000:]
    after = replica.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten
    assert "already at" in run.log_text()


def test_unknown_output_endpoint_fails_with_nostorage(secure_devserver, secure_pilot):
    pandaid, job, out, log = submit(secure_devserver, "echo hi > $OUT",
                                    ddmEndPointOut="NOWHERE_DATADISK,LOCAL_DISK",
                                    fileDestinationSE="NOWHERE_DATADISK,LOCAL_DISK")
    run, final = run_job(secure_devserver, secure_pilot, pandaid)
    assert final["state"] == "failed"
    assert int(final["pilotErrorCode"]) == E.NOSTORAGE, final["pilotErrorDiag"]
    assert "NOWHERE_DATADISK" in final["pilotErrorDiag"]
    assert not list(Path(secure_pilot.base).rglob("output.list"))  # not handed to aCT's list either


@pytest.fixture
def json_secret(secure_base, pilot_mode):
    """A JSON file of the pilot's (a token, say) that a job report link could point at."""
    path = secure_base / "token.json"
    path.write_text('{"exitCode": 0, "exitMsg": "OK", "access_token": "pilot-secret-7f3a9c"}')
    os.chown(path, pilot_mode.uid, pilot_mode.gid)
    path.chmod(0o600)
    return path


def test_job_report_and_stderr_linked_to_secrets_reach_no_server(secure_devserver, secure_pilot, json_secret):
    pandaid, job, out, log = submit(
        secure_devserver, f"echo hi > $OUT; ln -s {json_secret} jobReport.json; "
                          f"rm -f payload.stderr; ln -s {json_secret} payload.stderr; exit 3")
    run, final = run_job(secure_devserver, secure_pilot, pandaid)
    assert final["state"] == "failed"
    sent = repr(secure_devserver.updates(pandaid))
    assert "pilot-secret-7f3a9c" not in sent
    assert "unreadable" in run.log_text() and "outside the work dir" in run.log_text()


def test_payload_output_replaced_by_fifos_hangs_nothing(secure_devserver, secure_pilot):
    pandaid, job, out, log = submit(
        secure_devserver, "echo hi > $OUT; rm -f payload.stdout payload.stderr; mkfifo payload.stdout "
                          "payload.stderr jobReport.json; exit 5")
    run, final = run_job(secure_devserver, secure_pilot, pandaid, bound=60)
    assert final["state"] == "failed"
    assert int(final["transExitCode"]) == 5, final
    members = tarball_members(on_storage(secure_devserver, log))
    assert not any(name.endswith(("payload.stdout", "jobReport.json")) for name in members)


def test_unreadable_output_fails_at_once(secure_devserver, secure_pilot, pilot_mode):
    pandaid, job, out, log = submit(secure_devserver, "echo hi > $OUT; chmod 000 $OUT")
    run, final = run_job(secure_devserver, secure_pilot, pandaid, bound=60)
    if pilot_mode.is_root:  # root reads a mode-000 file: nothing to refuse
        assert final["state"] == "finished", run.log_text()[-3000:]
        return
    assert final["state"] == "failed"
    assert int(final["pilotErrorCode"]) == E.FILEHANDLINGFAILURE, final["pilotErrorDiag"]
    assert "cannot be opened" in final["pilotErrorDiag"]
