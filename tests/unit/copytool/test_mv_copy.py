"""The mv tool's copies: mode bits kept as cp does, and a cancel that stops a large file mid-way."""

import os

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool import mv
from pilot.info import FileSpec


class StopAfter:
    def __init__(self, n):
        self.n, self.looks = n, 0

    def is_set(self):
        self.looks += 1
        return self.looks >= self.n


def test_copy_keeps_mode_bits_and_bytes(tmp_path):
    src = tmp_path / "script.sh"
    src.write_bytes(b"#!/bin/sh\necho hi\n" * 1000)
    src.chmod(0o755)
    dst = tmp_path / "copy.sh"
    mv._copy_data(str(src), str(dst))
    assert dst.read_bytes() == src.read_bytes() and (dst.stat().st_mode & 0o777) == 0o755


def test_cancel_stops_a_copy_between_steps_and_leaves_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.setattr(mv, "COPY_STEP", 64 * 1024)
    src = tmp_path / "store" / "big.dat"
    src.parent.mkdir()
    src.write_bytes(os.urandom(1024 * 1024))  # 16 steps
    work = tmp_path / "work"
    work.mkdir()
    f = FileSpec(filetype="input", scope="tests", lfn="big.dat", turl=f"file://{src}", workdir=str(work))
    stop = StopAfter(4)
    with pytest.raises(PilotException) as err:
        mv.copy_in([f], workdir=str(work), stop_event=stop)
    assert err.value.state == "CANCELLED" and err.value.get_error_code() == ErrorCodes.STAGEINFAILED
    assert stop.looks == 4 and os.listdir(work) == []


def test_stage_out_cancel_is_a_stage_out_error(tmp_path, monkeypatch):
    monkeypatch.setattr(mv, "COPY_STEP", 4096)
    work = tmp_path / "work"
    work.mkdir()
    (work / "out.dat").write_bytes(b"o" * 65536)
    dst = tmp_path / "store" / "out.dat"
    f = FileSpec(filetype="output", scope="tests", lfn="out.dat", surl=f"file://{dst}", workdir=str(work))
    with pytest.raises(PilotException) as err:
        mv.copy_out([f], workdir=str(work), stop_event=StopAfter(2))
    assert err.value.get_error_code() == ErrorCodes.STAGEOUTFAILED and not dst.exists()
    assert os.listdir(dst.parent) == []
