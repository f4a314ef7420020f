"""A pilot that cannot run a job does not ask for one (the checks of pilot.control.preflight).

Each run is a real pilot process against the dev server; the server's request log proves that no
getJob arrived, and a job waiting on the server stays untouched.
"""

from __future__ import annotations

import base64
import datetime
import json
import shutil
import time
from pathlib import Path

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job
from pilot.util.auxiliary import shell_exit_code


def _jwt(seconds_left: int) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'sub': 'p', 'exp': int(time.time()) + seconds_left})}.c2ln"


def make_proxy(path: Path, seconds_left: int) -> Path:
    """A self-signed certificate + key (proxy-like PEM) that expires ``seconds_left`` from now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pilot preflight test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(seconds=seconds_left)).sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def assert_refused(devserver, run, pandaid: int, code: int, text: str) -> None:
    status = run.wait(90)
    log = run.log_text()
    assert status == shell_exit_code(code), log[-3000:]
    assert "cannot ask for a job" in log and text in log, log[-3000:]
    assert devserver.requests("getJob") == [], "a getJob reached the server"
    assert devserver.job(pandaid)["state"] in ("defined", "activated"), devserver.job(pandaid)


@pytest.fixture
def waiting_job(devserver):
    return devserver.submit(sample_job(devserver.storage_dir))


def test_proxy_with_ten_minutes_left_takes_no_job(devserver, start_pilot, waiting_job, tmp_path):
    proxy = make_proxy(tmp_path / "x509up", 600)
    run = start_pilot(env={"X509_USER_PROXY": str(proxy)})
    assert_refused(devserver, run, waiting_job, ErrorCodes.NOVOMSPROXY, "need 1 h to take a job")


def test_token_with_ten_minutes_left_takes_no_job(devserver, start_pilot, waiting_job, tmp_path):
    token = tmp_path / "token"
    token.write_text(_jwt(600))
    run = start_pilot(env={"X509_USER_PROXY": str(tmp_path / "none"), "BEARER_TOKEN_FILE": str(token)})
    assert_refused(devserver, run, waiting_job, ErrorCodes.NOVOMSPROXY, "token is about to expire")


def test_required_credential_missing(devserver, start_pilot, waiting_job, tmp_path):
    run = start_pilot(env={"X509_USER_PROXY": str(tmp_path / "none"), "BEARER_TOKEN_FILE": ""},
                      config_text="\n[Pilot]\ngetjob_require_credential: True\n")
    assert_refused(devserver, run, waiting_job, ErrorCodes.NOPROXY, "no proxy")


def test_short_proxy_is_not_checked_with_t(devserver, start_pilot, waiting_job, tmp_path):
    proxy = make_proxy(tmp_path / "x509up", 600)
    run = start_pilot(extra=["-t"], env={"X509_USER_PROXY": str(proxy)})
    assert run.wait(120) == 0, run.log_text()[-3000:]
    assert devserver.wait_final(waiting_job, timeout=30)["state"] == "finished"


def test_long_proxy_takes_the_job(devserver, start_pilot, waiting_job, tmp_path):
    proxy = make_proxy(tmp_path / "x509up", 3 * 3600)
    run = start_pilot(env={"X509_USER_PROXY": str(proxy)})
    assert run.wait(120) == 0, run.log_text()[-3000:]
    assert "credential check before getJob: valid" in run.log_text()
    assert devserver.wait_final(waiting_job, timeout=30)["state"] == "finished"


def test_too_little_free_space_takes_no_job(devserver, start_pilot, waiting_job, tmp_path):
    free = shutil.disk_usage(tmp_path).free
    limit_gb = free // 1024 ** 3 + 5  # more than the file system has free
    run = start_pilot(config_text=f"\n[Pilot]\nfree_space_limit: {limit_gb} GB\n")
    assert_refused(devserver, run, waiting_job, ErrorCodes.NOLOCALSPACE, "too little space left on local disk")


def test_unknown_pilot_user_takes_no_job(devserver, start_pilot, waiting_job):
    run = start_pilot(extra=["--pilot-user", "nosuchexperiment"])
    assert_refused(devserver, run, waiting_job, ErrorCodes.NOTIMPLEMENTED, "nosuchexperiment")


# the experiment plug-in of the next test lives outside the pilot tree: a test-only sitecustomize adds
# its directory to ``pilot.user`` (then hands over to any other sitecustomize, e.g. a coverage hook)
SITECUSTOMIZE = '''
import os, sys
import pilot.user
pilot.user.__path__.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins"))
here = os.path.dirname(os.path.abspath(__file__))
del sys.modules["sitecustomize"]
saved = list(sys.path)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
try:
    import sitecustomize  # noqa: F401
except ImportError:
    pass
finally:
    sys.path[:] = saved
'''


def test_plugin_with_a_wrong_signature_takes_no_job(devserver, start_pilot, waiting_job, tmp_path):
    """A plug-in function the pilot would call with a TypeError is refused at load: 1300, with both signatures."""
    from pilot.control.preflight import PLUGIN_MODULES

    ext = tmp_path / "ext"
    plugin = ext / "plugins" / "brokensig"
    plugin.mkdir(parents=True)
    (ext / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (plugin / "__init__.py").write_text("")
    for name in PLUGIN_MODULES:
        (plugin / f"{name}.py").write_text(f"from pilot.user.generic.{name} import *  # noqa: F401,F403\n")
    with open(plugin / "common.py", "a") as handle:  # the generic plug-in, but validate wants a second argument
        handle.write("\n\ndef validate(job, strict):\n    return True\n")
    repo = Path(__file__).resolve().parents[2]
    run = start_pilot(extra=["--pilot-user", "brokensig"], env={"PYTHONPATH": f"{repo}:{ext}"})
    assert_refused(devserver, run, waiting_job, ErrorCodes.NOTIMPLEMENTED,
                   "pilot.user.brokensig.common.validate requires 'strict', which the pilot does not always pass: "
                   "the plug-in has validate(job, strict), the contract (UserCommonPlugin) is "
                   "validate(job: JobData) -> bool")
