"""The import surface outside code and the upstream tests use, called the way they call it."""

from __future__ import annotations

import argparse
import os
import re
import time

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import StageInFailure, StageOutFailure
from pilot.control.job import get_fake_job
from pilot.copytool.mv import copy_in, copy_out
from pilot.info import FileSpec, JobData


# ------------------------------------------------------------------ pilot.util.https (Pilot 2 set-up names)
def test_https_setup_names(tmp_path, monkeypatch):
    from pilot.util import https
    from pilot.util.https import cacert, cacert_default_location, capath, https_setup

    assert cacert_default_location() == f"/tmp/x509up_u{os.getuid()}"
    proxy = tmp_path / "x509up"
    proxy.write_text("pem")
    certs = tmp_path / "certs"
    certs.mkdir()
    monkeypatch.delenv("X509_USER_PROXY", raising=False)
    monkeypatch.delenv("X509_CERT_DIR", raising=False)
    args = argparse.Namespace(cacert=str(proxy), capath=str(certs), url="", port=25443)
    assert cacert(args) == str(proxy) and capath(args) == str(certs)
    # the next candidates: the environment, then the default places
    monkeypatch.setenv("X509_USER_PROXY", str(proxy))
    monkeypatch.setenv("X509_CERT_DIR", str(certs))
    assert cacert(argparse.Namespace(cacert=str(tmp_path / "missing"), capath=None)) == str(proxy)
    assert cacert() == str(proxy) and capath() == str(certs)
    previous = https.shared_client()
    try:
        client = https_setup(args, "2.12.8")
        assert isinstance(client, https.HttpClient) and https.shared_client() is client
        assert client.cacert == str(proxy) and client.capath == str(certs)
    finally:
        https.set_shared_client(previous)


def test_time_stamp():
    from pilot.util.timing import time_stamp

    text = time_stamp()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", text), text
    assert time_stamp(0).startswith(time.strftime("%Y-%m-%dT", time.localtime(0)))


# ------------------------------------------------------------------ JobData(dict)
def test_jobdata_parses_a_definition_dict():
    res = get_fake_job()
    job = JobData(res)
    assert job.jobid == str(res["PandaID"]) and job.jobid != str(res)
    assert job.transformation == "/bin/bash" and [f.lfn for f in job.indata] == ["fake_input.txt"]
    assert [f.lfn for f in job.logdata] == [res["logFile"]]
    assert JobData(data=res).jobid == job.jobid and JobData(res, use_kmap=True).jobid == job.jobid
    assert JobData(jobid="42").jobid == "42" and JobData("43").jobid == "43"
    with pytest.raises(ValueError):
        JobData({"transformation": "x"})  # nothing can be reported without a PandaID


def test_prepare_infiles_and_outfiles():
    jdata = JobData(get_fake_job())
    data = {"inFiles": "a.root,b.root", "realDatasetsIn": "ds1,ds1", "GUID": "g1,g2", "fsize": "10,20",
            "checksum": "ad:00000001,md:abc", "scopeIn": "scope1,scope1", "ddmEndPointIn": "ep1,ep1"}
    infiles = jdata.prepare_infiles(data)
    assert [f.lfn for f in infiles] == ["a.root", "b.root"]
    assert [f.filesize for f in infiles] == [10, 20] and infiles[0].checksum == {"adler32": "00000001"}
    assert all(isinstance(f, FileSpec) and f.filetype == "input" for f in infiles)
    outs, logs = jdata.prepare_outfiles({"outFiles": "o.root,l.tgz", "logFile": "l.tgz", "scopeOut": "s,s",
                                         "scopeLog": "s", "realDatasets": "d,d", "ddmEndPointOut": "e,e"})
    assert [f.lfn for f in outs] == ["o.root"] and [f.lfn for f in logs] == ["l.tgz"]
    assert jdata.indata[0].lfn == "fake_input.txt"  # the job itself is not changed


# ------------------------------------------------------------------ pilot.api.services
def test_services_names():
    from pilot.api.services import Benchmark, MemoryMonitoring, Services

    assert issubclass(Benchmark, Services) and issubclass(MemoryMonitoring, Services)
    monitor = MemoryMonitoring(pid=os.getpid(), workdir="/tmp", interval=1)
    assert monitor.get_results() in (None, {}) or isinstance(monitor.get_results(), dict)
    with pytest.raises(AttributeError):
        from pilot.api import services

        services.NoSuchService  # noqa: B018


# ------------------------------------------------------------------ mv copytool (upstream test_copytools_mv shapes)
@pytest.fixture
def mv_files(tmp_path):
    """Inputs next to the work dir (Pilot 2's mv looks in the work dir's parent), as FileSpecs from JobData."""
    src = tmp_path / "src"
    work = src / "work"
    work.mkdir(parents=True)
    names = [f"file{i}.dat" for i in range(3)]
    for name in names:
        (src / name).write_bytes(os.urandom(100))
    data = {"inFiles": ",".join(names), "realDatasetsIn": ",".join(["dataset1"] * 3),
            "GUID": ",".join(["abcdefaaaaaa"] * 3), "fsize": ",".join(["100"] * 3), "checksum": "",
            "scopeIn": ",".join(["scope1"] * 3), "ddmEndPointIn": ",".join(["ep1"] * 3)}
    indata = JobData(get_fake_job()).prepare_infiles(data)
    return src, work, names, indata


@pytest.mark.parametrize("copy_type", ["cp", "mv", "symlink"])
def test_mv_copy_in_methods(mv_files, copy_type):
    src, work, names, indata = mv_files
    copy_in(indata, copy_type=copy_type, workdir=str(work))
    assert sorted(os.listdir(work)) == names
    assert all(os.path.islink(work / n) == (copy_type == "symlink") for n in names)
    assert all(f.status == "transferred" for f in indata)


@pytest.mark.parametrize("copy_type", ["", None])
def test_mv_copy_in_invalid(mv_files, copy_type):
    _, work, _, indata = mv_files
    with pytest.raises(StageInFailure) as err:
        copy_in(indata, copy_type=copy_type, workdir=str(work))
    assert err.value.get_error_code() == ErrorCodes.STAGEINFAILED
    assert os.listdir(work) == []


@pytest.mark.parametrize("copy_type", ["", "symlink", None])
def test_mv_copy_out_invalid(tmp_path, copy_type):
    work = tmp_path / "work"
    work.mkdir()
    (work / "o.dat").write_text("out")
    out = tmp_path / "out"
    outdata = [FileSpec(lfn="o.dat", filetype="output", workdir=str(work))]
    with pytest.raises(StageOutFailure) as err:
        copy_out(outdata, copy_type=copy_type, output_dir=str(out))
    assert err.value.get_error_code() == ErrorCodes.STAGEOUTFAILED
    assert not out.exists() or os.listdir(out) == []


@pytest.mark.parametrize("copy_type", ["cp", "mv"])
def test_mv_copy_out_methods(tmp_path, copy_type):
    work = tmp_path / "work"
    work.mkdir()
    (work / "o.dat").write_text("out")
    out = tmp_path / "out"
    out.mkdir()
    copy_out([FileSpec(lfn="o.dat", filetype="output", workdir=str(work))], copy_type=copy_type, output_dir=str(out))
    assert (out / "o.dat").read_text() == "out" and not (out / "o.dat").is_symlink()
    assert (work / "o.dat").exists() == (copy_type == "cp")


def test_queue_level_symlink_copies_outputs(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "o.dat").write_text("out")
    out = tmp_path / "out"
    out.mkdir()
    copy_out([FileSpec(lfn="o.dat", filetype="output", workdir=str(work))], output_dir=str(out),
             copytools={"mv": {"copy_type": "symlink"}})
    assert (out / "o.dat").read_text() == "out" and not (out / "o.dat").is_symlink()
