"""The mv tool when a placement fails: a move never loses the job's file, copies and links leave no litter."""

import errno
import logging
import os

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool import mv
from pilot.info.filespec import FileSpec

DATA = b"job data " * 1000


@pytest.fixture
def dirs(tmp_path):
    store, work = tmp_path / "store", tmp_path / "pilot" / "job"
    store.mkdir()
    work.mkdir(parents=True)
    return store, work


def cross_device(a, b, *args, **kwargs):
    """An os.rename between two file systems (the store and the work dir)."""
    raise OSError(errno.EXDEV, "Invalid cross-device link", a, None, b)


def stage_in(store, work, mode, **kwargs):
    (store / "a.dat").write_bytes(DATA)
    f = FileSpec(lfn="a.dat", workdir=str(work), turl=f"file://{store}/a.dat")
    with pytest.raises(PilotException) as err:
        mv.copy_in([f], copy_type=mode, **kwargs)
    assert f.status == "failed"
    return err.value


def stage_out(store, work, mode, **kwargs):
    (work / "o.dat").write_bytes(DATA)
    f = FileSpec(lfn="o.dat", filetype="output", workdir=str(work))
    with pytest.raises(PilotException) as err:
        mv.copy_out([f], copy_type=mode, output_dir=str(store), **kwargs)
    assert f.status == "failed"
    return err.value


@pytest.mark.parametrize("exdev", [False, True], ids=["same-fs", "cross-device"])
@pytest.mark.parametrize("mode", ["move", "copy", "symlink"])
def test_directory_at_the_input_name_keeps_the_source(dirs, monkeypatch, mode, exdev):
    store, work = dirs
    (work / "a.dat" / "sub").mkdir(parents=True)
    if exdev:
        monkeypatch.setattr(os, "rename", cross_device)
    err = stage_in(store, work, mode)
    assert err.get_error_code() == ErrorCodes.STAGEINFAILED and err.state == "COPY_ERROR"
    assert (store / "a.dat").read_bytes() == DATA
    assert os.listdir(store) == ["a.dat"] and os.listdir(work) == ["a.dat"]  # no temporary name left
    assert os.listdir(work / "a.dat") == ["sub"]


@pytest.mark.parametrize("exdev", [False, True], ids=["same-fs", "cross-device"])
@pytest.mark.parametrize("mode", ["move", "copy"])
def test_directory_at_the_output_name_keeps_the_output(dirs, monkeypatch, mode, exdev):
    store, work = dirs
    (store / "o.dat").mkdir()
    if exdev:
        monkeypatch.setattr(os, "rename", cross_device)
    err = stage_out(store, work, mode)
    assert err.get_error_code() == ErrorCodes.FILEEXISTS and err.state == "FILE_EXISTS"  # storage untouched
    assert (work / "o.dat").read_bytes() == DATA
    assert os.listdir(work) == ["o.dat"] and os.listdir(store) == ["o.dat"] and os.listdir(store / "o.dat") == []
    assert f"{store}/o.dat" in err.diag  # the name in the way, not a temporary one


def test_act_output_blocked_by_a_directory_keeps_the_output(dirs):
    _, work = dirs
    (work / "o.dat").write_bytes(DATA)
    (work.parent / "o.dat").mkdir()
    f = FileSpec(lfn="o.dat", workdir=str(work), surl="root://se/path/o.dat")
    with pytest.raises(PilotException) as err:
        mv.copy_out([f], copy_type="move")
    assert err.value.get_error_code() == ErrorCodes.FILEEXISTS
    assert (work / "o.dat").read_bytes() == DATA and os.listdir(work) == ["o.dat"]
    assert not [n for n in os.listdir(work.parent) if ".part" in n]
    assert not (work.parent / "output.list").exists()  # ARC is not told about a file that is not there


@pytest.mark.parametrize("mode", ["move", "copy"])
def test_refused_final_link_keeps_the_source(dirs, monkeypatch, mode):
    store, work = dirs
    monkeypatch.setattr(os, "rename", cross_device)

    def refuse(a, b, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", a, None, b)

    monkeypatch.setattr(os, "link", refuse)
    err = stage_out(store, work, mode)
    assert err.get_error_code() == ErrorCodes.STAGEOUTFAILED
    assert (work / "o.dat").read_bytes() == DATA and os.listdir(store) == []


@pytest.mark.parametrize("direction", ["in", "out"])
def test_move_across_file_systems_keeps_bytes_mode_and_times(dirs, monkeypatch, direction):
    store, work = dirs
    src, dst = (store / "a.dat", work / "a.dat") if direction == "in" else (work / "a.dat", store / "a.dat")
    src.write_bytes(DATA)
    src.chmod(0o640)
    os.utime(src, (1_500_000_000, 1_500_000_000))
    monkeypatch.setattr(os, "rename", cross_device)
    f = FileSpec(lfn="a.dat", workdir=str(work), turl=f"file://{src}")
    if direction == "in":
        mv.copy_in([f], copy_type="move")
    else:
        mv.copy_out([f], copy_type="move", output_dir=str(store))
        assert f.remote_checksum["adler32"]
    assert f.status == "transferred" and dst.read_bytes() == DATA and not src.exists()
    assert (dst.stat().st_mode & 0o777) == 0o640 and int(dst.stat().st_mtime) == 1_500_000_000
    assert os.listdir(dst.parent) == ["a.dat"]


def test_move_across_file_systems_never_replaces_an_existing_file(dirs, monkeypatch):
    store, work = dirs
    (store / "o.dat").write_text("stale")
    monkeypatch.setattr(os, "rename", cross_device)
    err = stage_out(store, work, "move")
    assert err.get_error_code() == ErrorCodes.FILEEXISTS
    assert (store / "o.dat").read_text() == "stale" and (work / "o.dat").read_bytes() == DATA


def test_cancelled_cross_device_move_keeps_the_source(dirs, monkeypatch):
    store, work = dirs
    monkeypatch.setattr(os, "rename", cross_device)
    monkeypatch.setattr(mv, "COPY_STEP", 1024)

    class StopSecond:
        looks = 0

        def is_set(self):
            self.looks += 1
            return self.looks >= 2

    err = stage_in(store, work, "move", stop_event=StopSecond())
    assert err.state == "CANCELLED" and err.get_error_code() == ErrorCodes.STAGEINFAILED
    assert (store / "a.dat").read_bytes() == DATA and os.listdir(work) == []


def test_source_that_cannot_go_after_a_cross_device_move_is_left(dirs, monkeypatch, caplog):
    store, work = dirs
    monkeypatch.setattr(os, "rename", cross_device)
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        if str(path) == f"{store}/a.dat":
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    (store / "a.dat").write_bytes(DATA)
    f = FileSpec(lfn="a.dat", workdir=str(work), turl=f"file://{store}/a.dat")
    with caplog.at_level(logging.WARNING, logger="pilot.copytool.mv"):
        mv.copy_in([f], copy_type="move")
    assert f.status == "transferred" and (work / "a.dat").read_bytes() == DATA
    assert (store / "a.dat").read_bytes() == DATA and "could not remove the source" in caplog.text


def moved_away(src, tmp, *args, **kwargs):
    """A transfer step that takes the source away to the temporary name (the case the guard is for)."""
    os.replace(src, tmp)


def test_a_temporary_file_without_its_source_goes_back(dirs, monkeypatch):
    store, work = dirs
    (work / "a.dat").mkdir()
    monkeypatch.setattr(mv, "_in_one_step", lambda *a: False)
    monkeypatch.setattr(mv, "_copy_data", moved_away)
    monkeypatch.setattr(mv.shutil, "copystat", lambda *a: None)
    err = stage_in(store, work, "move")
    assert err.get_error_code() == ErrorCodes.STAGEINFAILED and "kept at" not in err.diag
    assert (store / "a.dat").read_bytes() == DATA and os.listdir(store) == ["a.dat"]


def test_a_temporary_file_that_cannot_go_back_stays_and_is_named(dirs, monkeypatch):
    store, work = dirs
    (work / "a.dat").mkdir()
    monkeypatch.setattr(mv, "_in_one_step", lambda *a: False)
    monkeypatch.setattr(mv, "_copy_data", moved_away)
    monkeypatch.setattr(mv.shutil, "copystat", lambda *a: None)
    monkeypatch.setattr(os, "rename", cross_device)
    err = stage_in(store, work, "move")
    kept = [n for n in os.listdir(work) if n != "a.dat"]
    assert len(kept) == 1 and f"kept at {work}/{kept[0]}" in err.diag
    assert (work / kept[0]).read_bytes() == DATA and not (store / "a.dat").exists()
