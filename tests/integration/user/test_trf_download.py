"""User transformations downloaded over HTTP from a local web server, only from allowed base URLs."""

from __future__ import annotations

import functools
import http.server
import os
import threading

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.user.atlas.trf import download_transform, is_allowed


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def web(tmp_path):
    root = tmp_path / "www"
    (root / "trf" / "user").mkdir(parents=True)
    (root / "trf" / "user" / "runAthena-00-00-12").write_text("#!/bin/bash\necho athena\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_from_allowed_base(tmp_path, web, monkeypatch):
    monkeypatch.setenv("PILOT_ALLOWED_TRF_URLS", f"{web}/trf")
    work = tmp_path / "job"
    work.mkdir()
    name = download_transform(f"{web}/trf/user/runAthena-00-00-12", str(work))
    assert name == "runAthena-00-00-12"
    path = work / name
    assert path.read_text().startswith("#!/bin/bash") and os.access(path, os.X_OK)


def test_url_outside_the_allowed_bases_is_refused(tmp_path, web, monkeypatch):
    monkeypatch.setenv("PILOT_ALLOWED_TRF_URLS", f"{web}/trf/other")
    with pytest.raises(PilotException) as info:
        download_transform(f"{web}/trf/user/runAthena-00-00-12", str(tmp_path))
    assert info.value.code == ErrorCodes.TRFDOWNLOADFAILURE
    assert not (tmp_path / "runAthena-00-00-12").exists()


def test_missing_transformation_is_a_download_failure(tmp_path, web, monkeypatch):
    monkeypatch.setenv("PILOT_ALLOWED_TRF_URLS", f"{web}/trf")
    with pytest.raises(PilotException) as info:
        download_transform(f"{web}/trf/user/runGen-does-not-exist", str(tmp_path))
    assert info.value.code == ErrorCodes.TRFDOWNLOADFAILURE and "404" in info.value.diag


def test_allowed_base_matching_is_by_path_segment(monkeypatch):
    bases = ["http://host/trf"]
    assert is_allowed("http://host/trf/user/x", bases)
    assert not is_allowed("http://host/trfevil/x", bases)
    assert not is_allowed("http://host/trf/../etc/passwd", bases)
    assert not is_allowed("http://user:pw@host/trf/x", bases)
    assert not is_allowed("file:///trf/x", ["file:///trf"])
