"""-j self: the DN of the proxy owner goes into getJob's prodUserID."""

import subprocess
from types import SimpleNamespace

from pilot.util.proxy import distinguished_name


def make_proxy(tmp_path, subject):
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-subj", subject, "-days", "1"], check=True, capture_output=True)
    proxy = tmp_path / "x509up"
    proxy.write_bytes(cert.read_bytes() + key.read_bytes())
    return proxy


def test_dn_without_proxy_components(tmp_path):
    proxy = make_proxy(tmp_path, "/DC=ch/DC=cern/OU=Users/CN=jdoe/CN=12345/CN=678")
    assert distinguished_name(str(proxy)) == "/DC=ch/DC=cern/OU=Users/CN=jdoe"
    assert distinguished_name(str(tmp_path / "missing")) == ""


def test_getjob_sends_dn_for_self_label(tmp_path, monkeypatch):
    from pilot.control.job import getjob_fields

    proxy = make_proxy(tmp_path, "/DC=org/CN=Jane Doe")
    monkeypatch.setenv("X509_USER_PROXY", str(proxy))
    args = SimpleNamespace(queue="Q", job_label="self", working_group="", allow_other_country=False,
                           country_group="", allow_same_user=True, jobtype="", resource_type="", version_tag="PR")
    ctx = SimpleNamespace(args=args, mainworkdir=str(tmp_path), get_queuedata=lambda: None)
    node = SimpleNamespace(cpu_mhz=1000, mem_mb=1000, node_name="host")
    assert getjob_fields(ctx, node, 0)["prodUserID"] == "/DC=org/CN=Jane Doe"
