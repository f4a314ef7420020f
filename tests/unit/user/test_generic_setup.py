"""pilot.user.generic.setup: the ways a transformation is found (a fake HTTP client here; e2e: the dev server)."""

from __future__ import annotations

import os

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException, TrfDownloadFailure
from pilot.user.generic import setup


class FakeHttp:
    """Answers GETs from a dict url -> bytes (anything else is a failure)."""

    def __init__(self, answers):
        self.answers = answers
        self.asked = []

    def get(self, url, timeout=None):
        self.asked.append(url)
        if url not in self.answers:
            raise OSError(f"HTTP 404 for {url}")
        return self.answers[url]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("PILOT_BASEURLS", "PILOT_ALLOWED_TRF_URLS", "HARVESTER_WORKDIR"):
        monkeypatch.delenv(name, raising=False)


def test_already_in_the_work_dir_is_used_and_made_executable(tmp_path):
    (tmp_path / "runGen-1").write_text("#!/bin/sh\n")
    http = FakeHttp({})
    assert setup.get_analysis_trf("http://nowhere.example/trf/runGen-1", str(tmp_path), http=http) == "runGen-1"
    assert os.access(tmp_path / "runGen-1", os.X_OK) and http.asked == []


def test_harvester_workdir_copy(tmp_path, monkeypatch):
    harvester = tmp_path / "harvester"
    harvester.mkdir()
    (harvester / "runGen-2").write_text("#!/bin/sh\necho hi\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HARVESTER_WORKDIR", str(harvester))
    assert setup.get_analysis_trf("https://not.allowed/x/runGen-2", str(work), http=FakeHttp({})) == "runGen-2"
    assert (work / "runGen-2").read_text().endswith("echo hi\n") and os.access(work / "runGen-2", os.X_OK)


def test_download_own_base_then_the_others(tmp_path, monkeypatch):
    monkeypatch.setenv("PILOT_BASEURLS", "http://a.example/trf,http://b.example/files")
    http = FakeHttp({"http://b.example/files/user/runGen-3": b"#!/bin/sh\n"})
    assert setup.get_analysis_trf("http://a.example/trf/user/runGen-3", str(tmp_path), http=http) == "runGen-3"
    assert http.asked == ["http://a.example/trf/user/runGen-3", "http://b.example/files/user/runGen-3"]
    assert os.access(tmp_path / "runGen-3", os.X_OK)


@pytest.mark.parametrize("url, reason", [
    ("http://evil.example/trf/runGen", "not below an allowed base URL"),
    ("http://a.example/trfx/runGen", "not below an allowed base URL"),  # whole path segments only
    ("http://a.example/trf/../etc/runGen", "not below an allowed base URL"),
    ("http://user:pw@a.example/trf/runGen", "not below an allowed base URL"),
])
def test_not_allowed(tmp_path, monkeypatch, url, reason):
    monkeypatch.setenv("PILOT_ALLOWED_TRF_URLS", "http://a.example/trf")
    http = FakeHttp({url: b"x"})
    with pytest.raises(TrfDownloadFailure) as err:
        setup.get_analysis_trf(url, str(tmp_path), http=http)
    assert err.value.get_error_code() == ErrorCodes.TRFDOWNLOADFAILURE and reason in err.value.diag
    assert "not in the work dir" in err.value.diag and http.asked == []


def test_size_cap_and_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("PILOT_BASEURLS", "http://a.example/trf")
    monkeypatch.setattr(setup, "max_trf_size", lambda: 10)
    big = FakeHttp({"http://a.example/trf/big": b"x" * 11})
    with pytest.raises(TrfDownloadFailure, match="max_trf_size"):
        setup.get_analysis_trf("http://a.example/trf/big", str(tmp_path), http=big)
    empty = FakeHttp({"http://a.example/trf/empty": b""})
    with pytest.raises(TrfDownloadFailure, match="empty"):
        setup.get_analysis_trf("http://a.example/trf/empty", str(tmp_path), http=empty)
    assert not (tmp_path / "big").exists() and not (tmp_path / "empty").exists()


def test_bad_name(tmp_path):
    with pytest.raises(TrfDownloadFailure, match="no usable file name"):
        setup.get_analysis_trf("http://a.example/trf/", str(tmp_path), http=FakeHttp({}))


def test_chmod_failure_is_1143(tmp_path, monkeypatch):
    (tmp_path / "runGen-4").write_text("#!/bin/sh\n")

    def refuse(path, mode):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(os, "chmod", refuse)
    with pytest.raises(PilotException) as err:
        setup.get_analysis_trf("http://a.example/trf/runGen-4", str(tmp_path), http=FakeHttp({}))
    assert err.value.get_error_code() == ErrorCodes.CHMODTRF


def test_plain_name_from_harvester_or_path(tmp_path, monkeypatch):
    harvester = tmp_path / "h"
    harvester.mkdir()
    (harvester / "mytrf.sh").write_text("#!/bin/sh\n")
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.setenv("HARVESTER_WORKDIR", str(harvester))
    assert setup.local_transformation("mytrf.sh", str(work)) == "./mytrf.sh"
    assert setup.local_transformation("bash", str(work)) is None  # a command on the PATH runs as given
    assert setup.local_transformation("/bin/bash", str(work)) is None
    assert setup.local_transformation("missing.sh", str(work)) is None
