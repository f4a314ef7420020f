"""verify_input on its own: one stat for a plain file, a link's target read only for a debug line."""

import logging
import os
import zlib

import pytest

from pilot.api import staging
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.info.filespec import FileSpec

DATA = b"input bytes " * 100


def adler(data):
    return f"{zlib.adler32(data) & 0xffffffff:08x}"


@pytest.fixture
def work(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "in.dat").write_bytes(DATA)
    (tmp_path / "work").mkdir()
    return tmp_path


@pytest.fixture
def counted(monkeypatch):
    calls = {"stat": 0, "lstat": 0, "readlink": 0}
    for name in calls:
        real = getattr(os, name)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, wrapper)
    return calls


def spec(**kwargs):
    base = {"lfn": "in.dat", "filetype": "input", "filesize": len(DATA), "checksum": {"adler32": adler(DATA)}}
    base.update(kwargs)
    return FileSpec(**base)


def test_plain_file_is_stat_once(work, counted):
    (work / "work" / "in.dat").write_bytes(DATA)
    staging.verify_input(spec(), str(work / "work"))
    assert counted == {"stat": 0, "lstat": 1, "readlink": 0}


def test_size_is_filled_in_and_checksum_computed(work):
    (work / "work" / "in.dat").write_bytes(DATA)
    f = spec(filesize=0, checksum={})
    staging.verify_input(f, str(work / "work"))
    assert f.filesize == len(DATA) and f.checksum["adler32"] == adler(DATA)


@pytest.mark.parametrize("debug", [False, True])
def test_link_target_is_read_only_for_debug(work, counted, caplog, debug):
    os.symlink(work / "store" / "in.dat", work / "work" / "in.dat")
    level = logging.DEBUG if debug else logging.INFO
    with caplog.at_level(level, logger="pilot.api.staging"):
        staging.verify_input(spec(checksum={"adler32": "deadbeef"}), str(work / "work"))  # size only
    assert counted["readlink"] == (1 if debug else 0) and counted["lstat"] == 1 and counted["stat"] == 1
    assert (f"link to {work}/store/in.dat" in caplog.text) == debug


def test_link_size_mismatch(work):
    os.symlink(work / "store" / "in.dat", work / "work" / "in.dat")
    with pytest.raises(PilotException) as err:
        staging.verify_input(spec(filesize=len(DATA) + 1), str(work / "work"))
    assert err.value.get_error_code() == ErrorCodes.STAGEINFAILED and err.value.state == "FS_MISMATCH"
    assert not os.path.lexists(work / "work" / "in.dat") and (work / "store" / "in.dat").exists()


@pytest.mark.parametrize("dangling", [False, True], ids=["absent", "dangling link"])
def test_missing_input(work, dangling):
    if dangling:
        os.symlink(work / "store" / "gone.dat", work / "work" / "in.dat")
    with pytest.raises(PilotException) as err:
        staging.verify_input(spec(), str(work / "work"))
    assert err.value.get_error_code() == ErrorCodes.MISSINGINPUTFILE and err.value.state == "MISSING_INPUT"


def test_checksum_mismatch_removes_the_copy(work):
    (work / "work" / "in.dat").write_bytes(DATA)
    with pytest.raises(PilotException) as err:
        staging.verify_input(spec(checksum={"adler32": "00000001"}), str(work / "work"))
    assert err.value.get_error_code() == ErrorCodes.GETADMISMATCH and not (work / "work" / "in.dat").exists()
