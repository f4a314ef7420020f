"""Proxy and token lifetimes read from real files (certificates made with openssl by the tests)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from fakesite import make_proxy_pem, voms_extension_hex

from pilot.common.errorcodes import ErrorCodes
from pilot.user.atlas import proxy as atlas_proxy
from pilot.user.generic import proxy as generic_proxy
from pilot.util import proxy as proxyutil

BACKENDS = ["der", "openssl", pytest.param("cryptography", marks=pytest.mark.skipif(
    not proxyutil.use_cryptography(), reason="the cryptography package is not installed"))]


def _gt(epoch: float) -> str:
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(epoch))


@pytest.fixture
def voms_proxy(tmp_path):
    """A 2-day certificate whose VOMS attributes end in 12 hours."""
    now = time.time()
    return make_proxy_pem(tmp_path / "x509up", days=2, voms_hex=voms_extension_hex(_gt(now - 60), _gt(now + 12 * 3600)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_lifetime_from_the_file(voms_proxy, backend):
    life = proxyutil.x509_lifetime(str(voms_proxy), backend=backend)
    now = time.time()
    assert abs(life.cert_end - (now + 2 * 86400)) < 120
    assert abs(life.voms_end - (now + 12 * 3600)) < 120
    assert 11.9 * 3600 < life.seconds_left(now) < 12.1 * 3600


def test_backends_agree(voms_proxy):
    if not proxyutil.use_cryptography():
        pytest.skip("the cryptography package is not installed")
    a = proxyutil.x509_lifetime(str(voms_proxy), backend="openssl")
    b = proxyutil.x509_lifetime(str(voms_proxy), backend="cryptography")
    assert a.cert_end == b.cert_end and a.voms_end == b.voms_end


def test_the_default_reads_the_der_without_a_subprocess(voms_proxy, monkeypatch):
    """The pre-getJob check runs no ``openssl`` (and needs no ``cryptography``): same end as openssl."""
    expected = proxyutil.x509_lifetime(str(voms_proxy), backend="openssl")
    monkeypatch.setattr(proxyutil, "run_command", lambda *a, **k: pytest.fail("a subprocess was started"))
    monkeypatch.setattr(proxyutil, "_cert_end_cryptography", lambda der: pytest.fail("cryptography was used"))
    life = proxyutil.x509_lifetime(str(voms_proxy))
    assert (life.cert_end, life.voms_end) == (expected.cert_end, expected.voms_end)


def test_der_reader_agrees_with_openssl_on_utctime_and_generalizedtime_certificates(tmp_path):
    """Real certificates: the system CAs (UTCTime ends before 2050, GeneralizedTime after) and one
    made here to end in 2051, whose notAfter openssl must write as GeneralizedTime."""
    import glob
    import subprocess
    paths = sorted(glob.glob("/etc/ssl/certs/*.pem"))[:40]
    key, late = tmp_path / "k.pem", tmp_path / "late.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(late), "-days", str(int((2524608000 + 86400 * 400 - time.time()) // 86400)),
                    "-subj", "/CN=late"], check=True, capture_output=True, timeout=60)
    paths.append(str(late))
    ends = []
    for path in paths:
        ends.append(proxyutil.x509_lifetime(path).cert_end)
        assert ends[-1] == proxyutil.x509_lifetime(path, backend="openssl").cert_end, path
    assert ends[-1] > 2524608000  # 2050-01-01: really past the UTCTime range


def test_verify_x509_limits(voms_proxy):
    path = str(voms_proxy)
    now = time.time()
    assert proxyutil.verify_x509(path, limit=1, now=now) == (0, "")
    code, diag = proxyutil.verify_x509(path, limit=24, now=now)
    assert code == ErrorCodes.VOMSPROXYABOUTTOEXPIRE and "VOMS" in diag
    assert proxyutil.verify_x509(path, limit=72, now=now)[0] == ErrorCodes.PROXYTOOSHORT
    # seen from the future: the certificate itself ran out
    assert proxyutil.verify_x509(path, limit=1, now=now + 3 * 86400)[0] == ErrorCodes.CERTIFICATEHASEXPIRED
    # the VOMS attributes have expired, the certificate has not
    assert proxyutil.verify_x509(path, limit=1, now=now + 13 * 3600)[0] == ErrorCodes.NOVOMSPROXY


def test_plain_certificate_and_voms_requirement(tmp_path, monkeypatch):
    path = make_proxy_pem(tmp_path / "plain", days=2)
    assert proxyutil.x509_lifetime(str(path)).voms_end is None
    assert generic_proxy.verify_proxy(limit=1, x509=str(path)) == (0, "")
    assert atlas_proxy.verify_proxy(limit=1, x509=str(path))[0] == ErrorCodes.NOVOMSPROXY
    # a certificate with two days left is too short at start-up and fine for a job
    assert generic_proxy.verify_proxy(limit=72, x509=str(path))[0] == ErrorCodes.PROXYTOOSHORT


def test_missing_and_broken_proxy(tmp_path, monkeypatch):
    monkeypatch.delenv("BEARER_TOKEN_FILE", raising=False)
    monkeypatch.delenv("PANDA_AUTH_DIR", raising=False)
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "nothing"))
    assert generic_proxy.verify_proxy()[0] == ErrorCodes.NOPROXY
    broken = tmp_path / "broken"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
    assert generic_proxy.verify_proxy(x509=str(broken))[0] == ErrorCodes.NOPROXY
    assert generic_proxy.verify_proxy(test=True) == (ErrorCodes.VOMSPROXYABOUTTOEXPIRE, "dummy test")


def _jwt(claims: dict) -> str:
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_token_file_used_without_proxy(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text(_jwt({"sub": "pilot", "exp": int(time.time()) + 6 * 3600}) + "\n")
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "no-proxy"))
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(token))
    assert generic_proxy.verify_proxy(limit=2) == (0, "")
    assert generic_proxy.verify_proxy(limit=12)[0] == ErrorCodes.VOMSPROXYABOUTTOEXPIRE
    token.write_text(_jwt({"sub": "pilot", "exp": int(time.time()) - 10}))
    assert generic_proxy.verify_proxy(limit=1)[0] == ErrorCodes.CERTIFICATEHASEXPIRED
    token.write_text("opaque-token-without-claims")
    assert generic_proxy.verify_proxy(limit=1)[0] == ErrorCodes.NOPROXY
