"""The mv copytool on its own: modes, sources, destinations, aCT output.list, unsafe names."""

import os

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.copytool import mv
from pilot.info.filespec import FileSpec


@pytest.fixture
def dirs(tmp_path):
    src, work = tmp_path / "src", tmp_path / "pilot" / "job"
    src.mkdir()
    work.mkdir(parents=True)
    (src / "a.dat").write_bytes(b"A" * 10)
    return src, work


@pytest.mark.parametrize("mode", ["copy", "symlink", "move"])
def test_copy_in_modes(dirs, mode):
    src, work = dirs
    f = FileSpec(lfn="a.dat", workdir=str(work), turl=f"file://{src}/a.dat")
    mv.copy_in([f], copy_type=mode)
    dst = work / "a.dat"
    assert f.status == "transferred" and f.status_code == 0 and dst.read_bytes() == b"A" * 10
    assert dst.is_symlink() == (mode == "symlink")
    assert (src / "a.dat").exists() == (mode != "move")


def test_copy_in_from_input_dir_and_parent(dirs):
    src, work = dirs
    f = FileSpec(lfn="a.dat")
    mv.copy_in([f], input_dir=str(src), workdir=str(work))
    assert (work / "a.dat").exists()
    (work.parent / "b.dat").write_text("b")  # aCT puts inputs next to the job dir
    g = FileSpec(lfn="b.dat", workdir=str(work))
    mv.copy_in([g])
    assert (work / "b.dat").read_text() == "b"


def test_missing_input_is_1331(dirs):
    _, work = dirs
    f = FileSpec(lfn="nope.dat", workdir=str(work))
    with pytest.raises(PilotException) as err:
        mv.copy_in([f])
    assert err.value.get_error_code() == ErrorCodes.MISSINGINPUTFILE and err.value.state == "MISSING_INPUT"
    assert f.status == "failed" and f.status_code == ErrorCodes.MISSINGINPUTFILE


@pytest.mark.parametrize("lfn", ["../escape.dat", "/etc/passwd", "a/../../b"])
def test_unsafe_lfn_rejected(dirs, lfn):
    src, work = dirs
    with pytest.raises(PilotException):
        mv.copy_in([FileSpec(lfn=lfn, workdir=str(work), turl=f"file://{src}/a.dat")])
    with pytest.raises(PilotException):
        mv.copy_out([FileSpec(lfn=lfn, workdir=str(work))], output_dir=str(src))
    assert not (work.parent / "escape.dat").exists()


def test_copy_out_to_output_dir_and_surl(dirs, tmp_path):
    _, work = dirs
    (work / "o.dat").write_text("out")
    f = FileSpec(lfn="o.dat", filetype="output", workdir=str(work))
    mv.copy_out([f], output_dir=str(tmp_path / "outdir"))
    assert (tmp_path / "outdir" / "o.dat").read_text() == "out" and f.status == "transferred"
    assert f.remote_checksum["adler32"]
    g = FileSpec(lfn="o.dat", filetype="output", workdir=str(work), surl=f"file://{tmp_path}/st/x/y/o.dat")
    mv.copy_out([g])
    assert (tmp_path / "st" / "x" / "y" / "o.dat").read_text() == "out"


def test_copy_out_replaces_existing_destination(dirs, tmp_path):
    _, work = dirs
    (work / "o.dat").write_text("new")
    (tmp_path / "o.dat").write_text("old content")
    mv.copy_out([FileSpec(lfn="o.dat", workdir=str(work))], output_dir=str(tmp_path))
    assert (tmp_path / "o.dat").read_text() == "new"


def test_copy_out_act_output_list(dirs):
    _, work = dirs
    (work / "o.dat").write_text("out")
    f = FileSpec(lfn="o.dat", workdir=str(work), surl="root://se/path/o.dat")
    mv.copy_out([f], copy_type="move")
    parent = work.parent
    assert (parent / "o.dat").read_text() == "out" and not (work / "o.dat").exists()
    assert (parent / "output.list").read_text() == "o.dat root://se/path/o.dat\n"


def test_copy_out_missing_file_is_1103(dirs):
    _, work = dirs
    with pytest.raises(PilotException) as err:
        mv.copy_out([FileSpec(lfn="none.dat", workdir=str(work))], output_dir=str(work.parent))
    assert err.value.get_error_code() == ErrorCodes.NOSUCHFILE


def test_bad_mode_is_configuration_error(dirs):
    with pytest.raises(PilotException) as err:
        mv.get_mode({"copy_type": "teleport"})
    assert err.value.get_error_code() == ErrorCodes.BADQUEUECONFIGURATION
    assert mv.get_mode({"catchall": "mv_copy_type=ln"}) == "symlink"


def test_contract_attributes():
    assert mv.require_replicas is False and mv.require_input_protocols is True
    assert mv.is_valid_for_copy_in([FileSpec(lfn="x")]) and not mv.is_valid_for_copy_out([FileSpec()])
    assert os.path.basename(mv.__file__) == "mv.py"
