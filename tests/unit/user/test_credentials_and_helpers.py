"""Credential helpers (parsers, environment isolation, proxy file mode) and the generic plug-in helpers."""

from __future__ import annotations

import base64
import json
import os
import stat

from pilot.user.generic import loopingjob_definitions, metadata, utilities
from pilot.user.generic.container import credential_masks
from pilot.util import proxy


def test_jwt_exp_claim():
    body = base64.urlsafe_b64encode(json.dumps({"exp": 1700000000, "sub": "x"}).encode()).rstrip(b"=").decode()
    assert proxy.token_expiry(f"aGVhZA.{body}.sig") == 1700000000.0
    assert proxy.token_expiry("not-a-jwt") is None
    assert proxy.token_expiry("a.!!!.c") is None
    no_exp = base64.urlsafe_b64encode(b'{"sub": "x"}').decode()
    assert proxy.token_expiry(f"h.{no_exp}.s") is None


def test_openssl_enddate_parser():
    assert proxy.parse_openssl_enddate("notAfter=Nov 23 02:29:31 2026 GMT\n") == 1795400971.0
    assert proxy.parse_openssl_enddate("nothing") is None


def test_der_walker_finds_the_voms_validity():
    def der(tag, content):
        return bytes([tag, len(content)]) + content

    validity = der(0x30, der(0x18, b"20250101000000Z") + der(0x18, b"20250102000000Z"))
    ext_value = der(0x30, der(0x30, der(0x30, der(0x02, b"\x01") + validity)))
    cert = b"\x30\x00" + der(0x06, proxy.VOMS_AC_OID) + der(0x04, ext_value)
    assert proxy.voms_end(cert) == 1735776000.0
    assert proxy.voms_end(b"\x30\x03\x02\x01\x01") is None


def test_der_certificate_end_and_time_formats():
    def der(tag, content):
        return bytes([tag, len(content)]) + content

    def cert(not_after, version=True):
        validity = der(0x30, der(0x17, b"250101000000Z") + not_after)
        fields = (der(0xA0, der(0x02, b"\x02")) if version else b"") + der(0x02, b"\x07") + der(0x30, b"") + \
            der(0x30, b"") + validity + der(0x30, b"")
        return der(0x30, der(0x30, fields) + der(0x30, b"") + der(0x03, b"\x00"))

    assert proxy.cert_end_der(cert(der(0x17, b"491231235959Z"))) == 2524607999.0  # UTCTime 49 -> 2049
    assert proxy.cert_end_der(cert(der(0x17, b"500101000000Z"), version=False)) == -631152000.0  # 50 -> 1950
    assert proxy.cert_end_der(cert(der(0x18, b"20510101000000Z"))) == 2556144000.0
    assert proxy.cert_end_der(cert(der(0x02, b"\x01"))) is None  # not a time
    assert proxy.cert_end_der(b"\x04\x01\x00") is None
    assert proxy._generalized_time(b"20240229120000.25Z") == 1709208000.0
    for bad in (b"2024022912000Z", b"20241329120000Z", b"2024022912x000Z", b""):
        assert proxy._generalized_time(bad) is None, bad
    assert proxy._utc_time(b"2402291200Z") is None


def test_check_time_left_codes():
    assert proxy.check_time_left("VOMS proxy", 10_000, 1, now=0) == (0, "")
    assert proxy.check_time_left("VOMS proxy", 2000, 1, now=0)[0] == 1370
    assert proxy.check_time_left("certificate", 2000, 1, now=0)[0] == 1373
    assert proxy.check_time_left("certificate", 10, 1, now=20)[0] == 1373
    assert proxy.check_time_left("certificate", 48 * 3600, 72, now=0)[0] == 1382


def test_environment_isolation(tmp_path):
    pilot_proxy = tmp_path / "pilot.proxy"
    pilot_proxy.write_text("x")
    env = {"X509_USER_PROXY": str(pilot_proxy), "BEARER_TOKEN_FILE": "/t", "PANDA_AUTH_TOKEN": "tok",
           "OIDC_AUTH_TOKEN": "o", "PATH": "/bin", "HOME": "/root"}
    work = tmp_path / "job"
    work.mkdir()
    out = proxy.isolate_credentials(env, str(work), pilot_environ=env)
    assert out == {"PATH": "/bin", "HOME": "/root"}
    assert proxy.isolate_credentials(env, str(work), keep_pilot_proxy=True, pilot_environ=env)[
        "X509_USER_PROXY"] == str(pilot_proxy)
    path = proxy.write_payload_proxy(str(work), "USER")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    out = proxy.isolate_credentials(env, str(work), keep_pilot_proxy=True, pilot_environ=env)
    assert out["X509_USER_PROXY"] == path


def test_credential_paths_and_masks(tmp_path, monkeypatch):
    pilot_proxy = tmp_path / "pilot.proxy"
    pilot_proxy.write_text("x")
    auth = tmp_path / "auth"
    auth.mkdir()
    (auth / "token").write_text("t")
    env = {"X509_USER_PROXY": str(pilot_proxy), "PANDA_AUTH_DIR": str(auth), "PANDA_AUTH_TOKEN": "token"}
    paths = proxy.pilot_credential_paths(env)
    assert str(pilot_proxy) in paths and str(auth / "token") in paths and str(auth) in paths
    masks = credential_masks(None, env, payload_env={"X509_USER_PROXY": str(pilot_proxy)})
    assert str(pilot_proxy) not in masks and str(auth) in masks


class _Communicator:
    def __init__(self, reply):
        self.reply = reply

    def get_proxy(self, role):
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def test_fetch_payload_proxy(tmp_path):
    path, diag = proxy.fetch_payload_proxy(_Communicator({"StatusCode": 0, "userProxy": "P"}), str(tmp_path))
    assert diag == "" and open(path).read() == "P"
    assert proxy.fetch_payload_proxy(_Communicator({"StatusCode": 90, "errorDialog": "no"}), str(tmp_path))[0] == ""
    assert "boom" in proxy.fetch_payload_proxy(_Communicator(OSError("boom")), str(tmp_path))[1]
    assert proxy.fetch_payload_proxy(object(), str(tmp_path))[0] == ""


def test_pool_file_catalog(tmp_path):
    text = metadata.create_input_file_metadata({"G1": "a&b.root", "G2": "root://x//y"}, str(tmp_path))
    assert (tmp_path / "PoolFileCatalog.xml").read_text() == text
    assert '<File ID="G1">' in text and 'name="a&amp;b.root"' in text and "<!DOCTYPE POOLFILECATALOG" in text


def test_memory_monitor_summary(tmp_path):
    (tmp_path / "memory_monitor_summary.json").write_text(json.dumps({
        "Max": {"rss": 100, "vmem": 200, "swap": 0, "pss": 90, "rchar": 1000, "wchar": 500, "read_bytes": 10,
                "write_bytes": 20, "wtime": 10},
        "Avg": {"rss": 50, "vmem": 100, "swap": 0, "pss": 45}}))
    info = utilities.get_memory_monitor_info(str(tmp_path))
    assert info["maxRSS"] == 100 and info["avgPSS"] == 45 and info["totRCHAR"] == 1000 and info["rateRCHAR"] == 100
    assert utilities.get_memory_monitor_info(str(tmp_path / "none")) == {}


def test_looping_job_file_filter():
    files = ["/w/out.root", "/w/x.py", "/w/pilotlog.txt", "/w/log.txt"]
    assert loopingjob_definitions.remove_unwanted_files("/w", files) == ["/w/out.root", "/w/log.txt"]
