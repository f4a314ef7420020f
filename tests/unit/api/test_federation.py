"""The federation fallback's URL and which failures it retries."""

from __future__ import annotations

from types import SimpleNamespace

from pilot.api import federation
from pilot.common.errorcodes import ErrorCodes
from pilot.info.filespec import FileSpec
from pilot.util.config import config


def test_global_url_as_atlas_builds_it():
    assert federation.global_url("fax.example.org:1094", "mc16_13TeV", "EVNT.01._000001.pool.root.1") == \
        "root://fax.example.org:1094//atlas/rucio/mc16_13TeV:EVNT.01._000001.pool.root.1"
    url = federation.global_url("root://fax.example.org/", "user.x", "f")
    assert url == "root://fax.example.org//atlas/rucio/user.x:f"


def test_redirector_from_queuedata_then_config():
    try:
        config.set("Pilot", "federation_redirector", "cfg.example.org")
        assert federation.federation_redirector(SimpleNamespace(params={})) == "cfg.example.org"
        assert federation.federation_redirector(SimpleNamespace(params={"federation_redirector": "q:1094"})) == "q:1094"
    finally:
        config.clear_overrides()
    assert federation.federation_redirector(None) == ""


def test_which_failures_are_retried():
    def spec(**kw):
        return FileSpec(type="input", scope="s", lfn="f", **kw)
    assert federation.may_retry(spec(status="failed", status_code=ErrorCodes.STAGEINFAILED))
    assert federation.may_retry(spec(status="failed", status_code=ErrorCodes.GETADMISMATCH))
    assert not federation.may_retry(spec(status="failed", status_code=ErrorCodes.NOLOCALSPACE))
    assert not federation.may_retry(spec(status="failed", status_code=1, transfer_error="cancelled"))
    assert not federation.may_retry(spec(status="transferred"))
