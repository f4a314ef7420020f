"""The payload guard's isolation modes when masking fails (a faked libc ``unshare``) and when it is off.

The guard runs in its own process (it becomes a subreaper and reaps every child: never inside pytest);
the fake replaces ``payloadns._libc_call`` there, so ``unshare`` fails as it does on a kernel or in a container
that forbids it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

FAKE_GUARD = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
import pilot.util.payloadguard as guard
import pilot.util.payloadns as ns
real = ns._libc_call


def refuse_unshare(libc, name, *args):
    if name == "unshare":
        raise OSError(1, "unshare(): Operation not permitted (faked by the test)")
    return real(libc, name, *args)


ns._libc_call = refuse_unshare
sys.exit(guard.main(sys.argv[1:]))
"""

REAL_GUARD = (f"import sys; sys.path.insert(0, {str(REPO)!r}); "
              "from pilot.util.payloadguard import main; sys.exit(main())")


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "x509up_pilot"
    path.write_text("PILOTSECRET\n")
    path.chmod(0o600)
    return path


def _guard(tmp_path, code: str, mode: str, secret: Path, line: str):
    status = tmp_path / "guard.json"
    cmd = [sys.executable, "-S", "-c", code, "--status", str(status), "--cwd", str(tmp_path),
           "--stdout", str(tmp_path / "out.txt"), "--isolation", mode, "--mask", str(secret), "--", line]
    result = subprocess.run(cmd, timeout=60)
    return result.returncode, json.loads(status.read_text())


def test_required_mode_does_not_start_the_payload(tmp_path, secret):
    rc, status = _guard(tmp_path, FAKE_GUARD, "required", secret, f"touch ran.txt; cat {secret}")
    assert rc == 126 and status["exit_code"] == 126
    assert not (tmp_path / "ran.txt").exists()
    creds = status["credentials"]
    assert creds["mode"] == "required" and creds["masked"] is False
    assert "Operation not permitted" in creds["error"] and "credentials not masked" in status["error"]


def test_auto_mode_runs_the_payload_and_says_the_credentials_are_readable(tmp_path, secret):
    rc, status = _guard(tmp_path, FAKE_GUARD, "auto", secret, f"cat {secret}; exit 4")
    assert rc == 4 and status["exit_code"] == 4
    assert "PILOTSECRET" in (tmp_path / "out.txt").read_text()
    assert status["credentials"]["masked"] is False and "Operation not permitted" in status["credentials"]["error"]


def test_off_mode_masks_nothing(tmp_path, secret):
    rc, status = _guard(tmp_path, REAL_GUARD, "off", secret, f"cat {secret}")
    assert rc == 0
    assert "PILOTSECRET" in (tmp_path / "out.txt").read_text()
    assert status["credentials"] == {"mode": "off", "masked": False, "paths": [], "error": ""}


def test_without_masks_the_guard_stays_as_it_was(tmp_path):
    status = tmp_path / "guard.json"
    result = subprocess.run([sys.executable, "-S", "-c", REAL_GUARD, "--status", str(status), "--", "exit 3"],
                            timeout=60)
    record = json.loads(status.read_text())
    assert result.returncode == 3 and record["exit_code"] == 3
    assert record["credentials"] == {"mode": "auto", "masked": False, "paths": [], "error": ""}
