"""The lsm copytool with stand-in lsm-get/lsm-put commands working on a local storage directory."""

import os
from pathlib import Path

import pytest
from sitetools import adler

from pilot.api.data import StageInClient, StageOutClient
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.info import FileSpec, InfoService

STUBS = Path(__file__).parent / "lsm_stubs"


@pytest.fixture
def lsm_site(local_site, monkeypatch):
    monkeypatch.setenv("PATH", f"{STUBS}{os.pathsep}{os.environ['PATH']}")
    local_site.info = InfoService().init(local_site.queue)
    return local_site


def test_lsm_roundtrip(lsm_site):
    data = os.urandom(4096)
    lsm_site.put("LOCAL_DATADISK", "tests", "l.dat", data)
    f = FileSpec(filetype="input", scope="tests", lfn="l.dat", checksum={"adler32": adler(data)}, filesize=len(data),
                 workdir=str(lsm_site.work), guid="G")
    StageInClient(lsm_site.info, acopytools="lsm").transfer([f], activity="pr")
    assert (lsm_site.work / "l.dat").read_bytes() == data and f.status == "transferred"
    (lsm_site.work / "o.dat").write_bytes(data[::-1])
    o = FileSpec(filetype="output", scope="tests", lfn="o.dat", workdir=str(lsm_site.work))
    StageOutClient(lsm_site.info, acopytools="lsm").transfer([o], activity="pw")
    assert open(o.surl[len("file://"):], "rb").read() == data[::-1]


def test_lsm_failures_classified(lsm_site):
    lsm_site.put("LOCAL_DATADISK", "tests", "c.dat", b"content")
    f = FileSpec(filetype="input", scope="tests", lfn="c.dat", checksum={"adler32": "00000001"},
                 workdir=str(lsm_site.work))
    with pytest.raises(PilotException) as err:
        StageInClient(lsm_site.info, acopytools="lsm").transfer([f], activity="pr")
    assert err.value.get_error_code() == ErrorCodes.GETADMISMATCH
    g = FileSpec(filetype="input", scope="tests", lfn="absent.dat", workdir=str(lsm_site.work))
    with pytest.raises(PilotException) as err:
        StageInClient(lsm_site.info, acopytools="lsm").transfer([g], activity="pr")
    assert err.value.get_error_code() == ErrorCodes.MISSINGINPUTFILE
