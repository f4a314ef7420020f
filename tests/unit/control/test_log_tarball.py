"""The log tarball: layout, exclusions, symlinks dereferenced, and the 1376 time-out."""

import os
import tarfile

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.control.data import create_log_tarball
from pilot.info.jobdata import JobData


def make_job(tmp_path):
    job = JobData.from_definition({"PandaID": "42", "transformation": "x", "inFiles": "in.root", "scopeIn": "s",
                                   "outFiles": "out.root,log.tgz", "logFile": "log.tgz", "scopeOut": "s"})
    job.workdir = str(tmp_path)
    for name in ("in.root", "out.root", "payload.stdout"):
        (tmp_path / name).write_text(name)
    (tmp_path / "target.txt").write_text("real content")
    os.symlink(tmp_path / "target.txt", tmp_path / "link.txt")
    return job


def test_layout_and_exclusions(tmp_path):
    job = make_job(tmp_path)
    path = create_log_tarball(job, "QUEUE")
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
        link = tar.getmember("tarball_PandaJob_42_QUEUE/link.txt")
        assert link.isfile()  # dereferenced
    assert "tarball_PandaJob_42_QUEUE/payload.stdout" in names
    assert not any(n.endswith(("in.root", "out.root", "log.tgz")) for n in names)
    assert not (tmp_path / "in.root").exists()  # inputs removed first
    assert (tmp_path / "out.root").exists()


def test_timeout_is_1376(tmp_path):
    job = make_job(tmp_path)
    with open(tmp_path / "huge.sparse", "wb") as handle:  # 64 GB of holes: no disk, but minutes to read
        handle.truncate(64 * 1024 ** 3)
    with pytest.raises(PilotException) as info:
        create_log_tarball(job, "QUEUE", timeout=1)
    assert info.value.get_error_code() == ErrorCodes.LOGCREATIONTIMEOUT
    assert not (tmp_path / "log.tgz").exists()
