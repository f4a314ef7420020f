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


def test_copy_out_never_replaces_an_existing_destination(dirs, tmp_path):
    _, work = dirs
    (work / "o.dat").write_text("new")
    (tmp_path / "o.dat").write_text("old content")
    with pytest.raises(PilotException) as err:
        mv.copy_out([FileSpec(lfn="o.dat", workdir=str(work))], output_dir=str(tmp_path))
    assert err.value.get_error_code() == ErrorCodes.FILEEXISTS
    assert (tmp_path / "o.dat").read_text() == "old content"


def test_copy_out_same_file_already_there_is_success(dirs, tmp_path):
    _, work = dirs
    (work / "o.dat").write_text("same")
    (tmp_path / "o.dat").write_text("same")
    spec = FileSpec(lfn="o.dat", workdir=str(work))
    mv.copy_out([spec], output_dir=str(tmp_path))
    assert spec.status == "transferred" and spec.remote_checksum == spec.checksum


@pytest.mark.parametrize("mode", ["copy", "move"])
def test_copy_out_through_a_planted_link_is_refused(dirs, tmp_path, mode):
    _, work = dirs
    (work / "o.dat").write_text("payload bytes")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "out").mkdir()
    os.symlink(victim, tmp_path / "out" / "o.dat")
    with pytest.raises(PilotException) as err:
        mv.copy_out([FileSpec(lfn="o.dat", workdir=str(work))], output_dir=str(tmp_path / "out"), copy_type=mode)
    assert err.value.get_error_code() == ErrorCodes.FILEEXISTS
    assert victim.read_text() == "precious"


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


def test_link_to_a_free_name_is_one_call(dirs, monkeypatch):
    src, work = dirs
    calls = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda *a: (calls.append(a), real_replace(*a)))
    f = FileSpec(lfn="a.dat", workdir=str(work), turl=f"file://{src}/a.dat")
    mv.copy_in([f], copy_type="symlink")
    assert os.readlink(work / "a.dat") == str(src / "a.dat") and not calls


@pytest.mark.parametrize("mode", ["symlink", "move"])
@pytest.mark.parametrize("existing", ["file", "link"])
def test_link_or_move_replaces_what_is_there(dirs, mode, existing):
    src, work = dirs
    if existing == "file":
        (work / "a.dat").write_text("stale")
    else:
        os.symlink("/nonexistent/elsewhere", work / "a.dat")
    f = FileSpec(lfn="a.dat", workdir=str(work), turl=f"file://{src}/a.dat")
    mv.copy_in([f], copy_type=mode)
    assert (work / "a.dat").read_bytes() == b"A" * 10 and (work / "a.dat").is_symlink() == (mode == "symlink")
    assert sorted(os.listdir(work)) == ["a.dat"]  # no temporary name left behind


def test_move_across_file_systems_copies(dirs, monkeypatch):
    import errno

    src, work = dirs

    def cross_device(a, b):
        raise OSError(errno.EXDEV, "Invalid cross-device link", a)

    monkeypatch.setattr(os, "rename", cross_device)  # the move then copies and removes the source
    f = FileSpec(lfn="a.dat", workdir=str(work), turl=f"file://{src}/a.dat")
    mv.copy_in([f], copy_type="move")
    assert (work / "a.dat").read_bytes() == b"A" * 10 and not (src / "a.dat").exists()
    assert sorted(os.listdir(work)) == ["a.dat"]


@pytest.mark.parametrize("mode", ["copy", "symlink", "move"])
def test_missing_work_dir_is_a_mkdir_error(dirs, mode):
    src, work = dirs
    f = FileSpec(lfn="a.dat", workdir=str(work / "gone"), turl=f"file://{src}/a.dat")
    with pytest.raises(PilotException) as err:
        mv.copy_in([f], copy_type=mode)
    assert err.value.get_error_code() == ErrorCodes.MKDIR and (src / "a.dat").exists()


def test_missing_input_names_every_place_tried(dirs):
    src, work = dirs
    f = FileSpec(lfn="nope.dat", workdir=str(work), turl=f"file://{src}/nope.dat")
    with pytest.raises(PilotException) as err:
        mv.copy_in([f], input_dir=str(src / "in"))
    assert f"tried {src}/nope.dat, {src}/in/nope.dat, {work.parent}/nope.dat" in err.value.diag


def test_act_output_list_planted_as_a_link_is_not_written_through(dirs, tmp_path):
    _, work = dirs
    (work / "o.dat").write_text("out")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.symlink(victim, work.parent / "output.list")
    f = FileSpec(lfn="o.dat", workdir=str(work), surl="root://se/path/o.dat")
    with pytest.raises(PilotException):
        mv.copy_out([f])
    assert victim.read_text() == "precious"
