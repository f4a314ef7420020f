"""The checked open: only regular files, links only to regular files inside the root, reads bounded by fstat."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.util.archive import create_tarball
from pilot.util.filehandling import calculate_checksum
from pilot.util.safefile import UnsafeFile, create_exclusive, open_checked, private_name

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def work(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    (root / "data.txt").write_bytes(b"0123456789")
    (tmp_path / "secret").write_bytes(b"secret")
    return root


def refused(path, root=None):
    with pytest.raises(UnsafeFile) as err:
        open_checked(str(path), None if root is None else str(root))
    return err.value


def test_regular_file_reads_no_more_than_fstat_saw(work):
    with open_checked(str(work / "data.txt"), str(work)) as checked:
        assert checked.size == 10
        with open(work / "data.txt", "ab") as grow:  # grows after the check
            grow.write(b"more bytes")
        assert checked.read() == b"0123456789" and checked.read() == b""
        assert b"".join(checked.chunks(3)) == b"0123456789"


def test_shrunk_file_reads_as_zeros_up_to_its_size(work):
    with open_checked(str(work / "data.txt")) as checked:
        os.truncate(work / "data.txt", 4)
        assert checked.read(8) == b"0123\0\0\0\0" and checked.read() == b"\0\0"


@pytest.mark.parametrize("make,code,words", [
    (lambda w, t: os.mkfifo(w / "x"), ErrorCodes.FILEHANDLINGFAILURE, "FIFO"),
    (lambda w, t: (w / "x").mkdir(), ErrorCodes.FILEHANDLINGFAILURE, "directory"),
    (lambda w, t: os.symlink("/dev/zero", w / "x"), ErrorCodes.BADOUTPUTFILENAME, "outside the work dir"),
    (lambda w, t: os.symlink(t / "secret", w / "x"), ErrorCodes.BADOUTPUTFILENAME, "outside the work dir"),
    (lambda w, t: os.symlink("sub", w / "x") or (w / "sub").mkdir(), ErrorCodes.FILEHANDLINGFAILURE, "directory"),
    (lambda w, t: os.symlink("nothing", w / "x"), ErrorCodes.FILEHANDLINGFAILURE, "dangling"),
    (lambda w, t: os.symlink("x", w / "x"), ErrorCodes.FILEHANDLINGFAILURE, "symlink"),
    (lambda w, t: None, ErrorCodes.NOSUCHFILE, "does not exist"),
], ids=["fifo", "directory", "dev-zero", "link-out", "link-dir", "dangling", "loop", "missing"])
def test_refused_in_a_work_dir(work, tmp_path, make, code, words):
    make(work, tmp_path)
    err = refused(work / "x", work)
    assert err.get_error_code() == code and words in err.diag


def test_socket_is_refused(work):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(work / "s"))
        assert refused(work / "s", work).get_error_code() == ErrorCodes.FILEHANDLINGFAILURE


def test_link_inside_is_followed_and_subdir_links_cannot_lead_out(work, tmp_path):
    os.symlink("data.txt", work / "inside")
    with open_checked(str(work / "inside"), str(work)) as checked:
        assert checked.read() == b"0123456789"
    os.symlink(str(tmp_path), work / "up")  # a linked directory on the way out
    assert refused(work / "up" / "secret", work).get_error_code() == ErrorCodes.BADOUTPUTFILENAME


def test_without_a_root_links_are_followed_to_regular_files_only(work, tmp_path):
    os.symlink(tmp_path / "secret", work / "out")
    assert calculate_checksum(str(work / "out")) == calculate_checksum(str(tmp_path / "secret"))
    os.mkfifo(work / "fifo")
    os.symlink(work / "fifo", work / "to-fifo")
    done = []
    thread = threading.Thread(target=lambda: done.append(refused(work / "to-fifo")))
    thread.start()
    thread.join(10)
    assert done and done[0].get_error_code() == ErrorCodes.FILEHANDLINGFAILURE  # no hang on the FIFO


def test_create_exclusive_never_writes_through_a_link(work, tmp_path):
    os.symlink(tmp_path / "secret", work / "planted")
    with pytest.raises(FileExistsError):
        create_exclusive(str(work / "planted"))
    assert (tmp_path / "secret").read_bytes() == b"secret"
    name = private_name(str(work / "log.tgz"))
    assert os.path.dirname(name) == str(work) and name.endswith(".part") and name != private_name(str(work / "log.tgz"))


def test_tarball_members_and_exclusions(work, tmp_path):
    (work / "sub").mkdir()
    (work / "sub" / "b").write_text("b")
    os.symlink("data.txt", work / "link-in")
    os.symlink(tmp_path / "secret", work / "link-out")
    os.mkfifo(work / "fifo")
    os.symlink(tmp_path / "victim", work / "log.tgz")  # planted under the final name: replaced, not followed
    report = create_tarball(str(work), str(work / "log.tgz"), "top", lambda n: False, 60)
    assert not (tmp_path / "victim").exists() and not os.path.islink(work / "log.tgz")
    with tarfile.open(work / "log.tgz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        dirs = {m.name for m in tar.getmembers() if m.isdir()}
    assert files == {"top/data.txt": b"0123456789", "top/link-in": b"0123456789", "top/sub/b": b"b"}
    assert dirs == {"top", "top/sub"}
    assert set(report.skipped) == {"link-out", "fifo"} and report.members == 4
    assert [n for n in os.listdir(work) if n.endswith(".part")] == []


def test_empty_work_dir_gives_a_tarball(tmp_path):
    report = create_tarball(str(tmp_path), str(tmp_path / "log.tgz"), "top", lambda n: False, 60)
    with tarfile.open(tmp_path / "log.tgz") as tar:
        assert tar.getnames() == ["top"]
    assert report.members == 0


def test_tarball_of_an_unreadable_file_leaves_it_out(work):
    (work / "data.txt").chmod(0)
    if os.geteuid() != 0:
        report = create_tarball(str(work), str(work / "log.tgz"), "top", lambda n: False, 60)
        assert "data.txt" in report.skipped
        return
    # root reads mode-000 files: run the archive in a process whose bounding set lacks the override capabilities
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE"
    code = ("import sys; from pilot.util.archive import create_tarball; "
            "r = create_tarball(sys.argv[1], sys.argv[1] + '/log.tgz', 'top', lambda n: False, 60); "
            "print(sorted(r.skipped))")
    out = subprocess.run([setpriv, "--bounding-set", "-dac_override,-dac_read_search", sys.executable, "-c", code,
                          str(work)], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr
    assert "data.txt" in out.stdout
    with tarfile.open(work / "log.tgz") as tar:
        assert tar.getnames() == ["top"]


def test_tarball_timeout_is_1376_and_leaves_no_file(work):
    with pytest.raises(PilotException) as err:
        create_tarball(str(work), str(work / "log.tgz"), "top", lambda n: False, -1)
    assert err.value.get_error_code() == ErrorCodes.LOGCREATIONTIMEOUT
    assert sorted(os.listdir(work)) == ["data.txt"]
