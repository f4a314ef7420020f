"""Smoke tests of the loopback storage servers themselves (not of the pilot).

The servers are provisioned by ci/storage:

    ci/storage/setup-all.sh VENV
    ci/storage/start-all.sh
    . ci/storage/client-env.sh VENV
    pytest -m storage tests/integration/storage

Services checked: xrootd (root:// + XrdHttp https/davs, adler32) on 1094, nginx WebDAV on
18480 (http) / 18443 (https, davs; no checksums), the Rucio server on 18580 with the RSEs
PILOT_POSIX, PILOT_XRD and PILOT_DAVS, and the clients: xrdcp/xrdfs, gfal-copy/gfal-sum,
the Debian gfal2 and XRootD Python bindings and the rucio-clients API.

When a server port is closed, or a client tool is missing, the tests skip on a developer
machine but FAIL when CI=true: in CI a missing server is an error, never a skip.
The client environment (RUCIO_CONFIG, X509_*, GFAL_PYTHONBIN, CA bundles) defaults to what
ci/storage/client-env.sh exports, so sourcing it is optional.
"""

import hashlib
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
import zlib

import pytest

pytestmark = [
    pytest.mark.storage,
    # rucio.rse.protocols.webdav talks https with verify=False
    pytest.mark.filterwarnings("ignore:Unverified HTTPS request"),
]

STORAGE_ROOT = os.environ.get("STORAGE_ROOT", "/tmp/pilot-storage")
STORAGE_DATA = os.path.join(STORAGE_ROOT, "data")
STORAGE_PKI = os.path.join(STORAGE_ROOT, "pki")
HOST = "127.0.0.1"
XRD_PORT = int(os.environ.get("STORAGE_XROOTD_PORT", "1094"))
NGINX_HTTP_PORT = int(os.environ.get("STORAGE_NGINX_HTTP_PORT", "18480"))
NGINX_HTTPS_PORT = int(os.environ.get("STORAGE_NGINX_HTTPS_PORT", "18443"))
RUCIO_PORT = int(os.environ.get("STORAGE_RUCIO_PORT", "18580"))

IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
TIMEOUT = 120
SCOPE = "tests"
SCOPES = ["tests", "pilot", "user.root", "mc_test", "data_test"]

# what pilot/copytool/xrdcp.py parses: "adler32: 6a6e9570 root://... 1048576"
XRDCP_CKSUM_RE = re.compile(r"adler32:\s*([0-9a-fA-F]{1,8})\b")

CLIENT_ENV_DEFAULTS = {
    "RUCIO_CONFIG": os.path.join(STORAGE_ROOT, "rucio", "etc", "rucio-client.cfg"),
    "X509_CERT_DIR": os.path.join(STORAGE_PKI, "certificates"),
    "X509_USER_PROXY": os.path.join(STORAGE_PKI, "x509up"),
    "GFAL_PYTHONBIN": "/usr/bin/python3",
    "REQUESTS_CA_BUNDLE": os.path.join(STORAGE_PKI, "ca-bundle.pem"),
    "SSL_CERT_FILE": os.path.join(STORAGE_PKI, "ca-bundle.pem"),
}


# --- helpers -------------------------------------------------------------------------------

def unavailable(msg):
    """Skip on a developer machine, fail under CI."""
    if IN_CI:
        pytest.fail("%s (CI=true: the storage servers must be provisioned by ci/storage)" % msg,
                    pytrace=False)
    pytest.skip(msg)


def port_open(port, host=HOST):
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_port(name, port):
    if not port_open(port):
        unavailable("%s is not listening on %s:%d (ci/storage/start-all.sh)" % (name, HOST, port))


def require_tool(*names):
    for name in names:
        if shutil.which(name) is None:
            unavailable("%s not installed (ci/storage/setup-all.sh)" % name)


def adler32_of(path):
    value = 1
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            value = zlib.adler32(block, value)
    return "%08x" % (value & 0xffffffff)


def run(cmd, check=True):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=TIMEOUT, check=False)
    if check and proc.returncode != 0:
        pytest.fail("command failed (rc=%d): %s\n%s" % (proc.returncode, " ".join(cmd), proc.stdout),
                    pytrace=False)
    return proc


def same_content(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def ssl_context():
    return ssl.create_default_context(cafile=os.path.join(STORAGE_PKI, "ca.pem"))


def http(method, url, data=None, headers=None):
    """(status, headers, body) of a plain urllib request; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    kwargs = {"timeout": 30}
    if url.startswith("https:"):
        kwargs["context"] = ssl_context()
    try:
        with urllib.request.urlopen(req, **kwargs) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def rucio_hash_path(prefix, scope, name):
    """Where lfn2pfn 'hash' puts scope:name below an RSE prefix."""
    md5 = hashlib.md5(("%s:%s" % (scope, name)).encode()).hexdigest()
    return os.path.join(prefix, scope, md5[0:2], md5[2:4], name)


# --- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def client_env():
    """The client environment of ci/storage/client-env.sh, where not already set."""
    mp = pytest.MonkeyPatch()
    for key, value in CLIENT_ENV_DEFAULTS.items():
        if not os.environ.get(key):
            mp.setenv(key, value)
    yield
    mp.undo()


@pytest.fixture
def payload(tmp_path):
    """A 1 MiB random file and its adler32."""
    path = tmp_path / "payload.bin"
    path.write_bytes(os.urandom(1 << 20))
    return str(path), adler32_of(str(path))


@pytest.fixture
def remote_dir():
    """A unique directory name in the shared namespace; removed afterwards."""
    rel = "pilot-smoke/%s" % uuid.uuid4().hex
    yield rel
    shutil.rmtree(os.path.join(STORAGE_DATA, rel), ignore_errors=True)


@pytest.fixture
def xrootd():
    require_port("xrootd", XRD_PORT)


@pytest.fixture
def nginx():
    require_port("nginx (http)", NGINX_HTTP_PORT)
    require_port("nginx (https)", NGINX_HTTPS_PORT)


@pytest.fixture(scope="module")
def rucio_client(client_env):
    require_port("rucio server", RUCIO_PORT)
    cfg = os.environ["RUCIO_CONFIG"]
    if not os.path.isfile(cfg):
        unavailable("Rucio client config %s missing (ci/storage/start-all.sh)" % cfg)
    try:
        from rucio.client import Client
    except ImportError as exc:
        unavailable("rucio-clients not installed in this venv: %s" % exc)
    return Client()


# --- XRootD --------------------------------------------------------------------------------

def test_xrdcp_roundtrip_with_adler32(xrootd, payload, remote_dir, tmp_path):
    require_tool("xrdcp", "xrdfs")
    src, cksum = payload
    url = "root://%s:%d//%s/x.bin" % (HOST, XRD_PORT, remote_dir)

    # the pilot's exact stage-out command
    out = run(["xrdcp", "-np", "-f", "--cksum", "adler32:print", src, url]).stdout
    match = XRDCP_CKSUM_RE.search(out)
    assert match, out
    assert match.group(1).lower().zfill(8) == cksum
    # shared namespace: the file is visible under $STORAGE_DATA
    on_disk = os.path.join(STORAGE_DATA, remote_dir, "x.bin")
    assert os.path.isfile(on_disk) and same_content(src, on_disk)

    # server side checksum
    out = run(["xrdfs", "%s:%d" % (HOST, XRD_PORT), "query", "checksum", "/%s/x.bin" % remote_dir]).stdout
    assert "adler32 %s" % cksum in out

    # the pilot's exact stage-in command
    dst = str(tmp_path / "back.bin")
    out = run(["xrdcp", "-np", "-f", "--cksum", "adler32:print", url, dst]).stdout
    match = XRDCP_CKSUM_RE.search(out)
    assert match and match.group(1).lower().zfill(8) == cksum, out
    assert same_content(src, dst)

    run(["xrdfs", "%s:%d" % (HOST, XRD_PORT), "rm", "/%s/x.bin" % remote_dir])
    assert not os.path.exists(on_disk)


def test_xrdcp_verifies_given_adler32(xrootd, payload, remote_dir):
    require_tool("xrdcp")
    src, cksum = payload
    base = "root://%s:%d//%s" % (HOST, XRD_PORT, remote_dir)
    run(["xrdcp", "-np", "-f", "--cksum", "adler32:%s" % cksum, src, base + "/good.bin"])
    bad = "%08x" % ((int(cksum, 16) + 1) & 0xffffffff)
    proc = run(["xrdcp", "-np", "-f", "--cksum", "adler32:%s" % bad, src, base + "/bad.bin"], check=False)
    assert proc.returncode != 0, proc.stdout
    assert "checksum" in proc.stdout.lower()


def test_xrdhttp_digest(xrootd, payload, remote_dir):
    """XrdHttp (https on the xrootd port) answers Want-Digest: adler32."""
    src, cksum = payload
    url = "https://%s:%d/%s/h.bin" % (HOST, XRD_PORT, remote_dir)
    with open(src, "rb") as f:
        status, _, body = http("PUT", url, data=f.read())
    assert status in (200, 201), body
    status, headers, _ = http("HEAD", url, headers={"Want-Digest": "adler32"})
    assert status == 200
    assert (headers.get("Digest") or "").lower() == "adler32=%s" % cksum


def test_xrootd_python_bindings(xrootd, payload, remote_dir):
    require_tool("xrdcp")
    try:
        from XRootD import client as xrd_client
        from XRootD.client.flags import QueryCode
    except ImportError as exc:
        unavailable("Debian python3-xrootd not linked into this venv: %s" % exc)
    src, cksum = payload
    path = "/%s/b.bin" % remote_dir
    run(["xrdcp", "-np", "-f", src, "root://%s:%d/%s" % (HOST, XRD_PORT, path)])
    fs = xrd_client.FileSystem("root://%s:%d" % (HOST, XRD_PORT))
    status, info = fs.stat(path)
    assert status.ok, status.message
    assert info.size == 1 << 20
    status, answer = fs.query(QueryCode.CHECKSUM, path)
    assert status.ok, status.message
    assert answer.decode().strip("\x00").split() == ["adler32", cksum]


# --- gfal2 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["root", "davs"])
def test_gfal_copy_with_adler32(xrootd, payload, remote_dir, tmp_path, scheme):
    """gfal-copy file:// -> root:// / davs:// (xrootd) and back, with -K adler32, plus gfal-sum."""
    require_tool("gfal-copy", "gfal-sum")
    src, cksum = payload
    sep = "//" if scheme == "root" else "/"
    url = "%s://%s:%d%s%s/g.bin" % (scheme, HOST, XRD_PORT, sep, remote_dir)

    # the pilot's form: gfal-copy --verbose -f -t 600 -K adler32:<value> SRC DST
    run(["gfal-copy", "--verbose", "-f", "-t", "600", "-K", "adler32:%s" % cksum, "file://" + src, url])
    assert same_content(src, os.path.join(STORAGE_DATA, remote_dir, "g.bin"))
    out = run(["gfal-sum", url, "ADLER32"]).stdout
    assert out.split()[-1].lower().zfill(8) == cksum, out

    dst = str(tmp_path / "back.bin")
    run(["gfal-copy", "-f", "-t", "600", "-K", "adler32", url, "file://" + dst])
    assert same_content(src, dst)

    # a wrong expected checksum must fail the copy
    bad = "%08x" % ((int(cksum, 16) + 1) & 0xffffffff)
    proc = run(["gfal-copy", "-f", "-t", "600", "-K", "adler32:%s" % bad, "file://" + src, url + ".bad"],
               check=False)
    assert proc.returncode != 0, proc.stdout


def test_gfal_sum_file(payload):
    require_tool("gfal-sum")
    src, cksum = payload
    out = run(["gfal-sum", "file://" + src, "ADLER32"]).stdout
    assert out.split()[-1].lower().zfill(8) == cksum, out


def test_gfal2_python_bindings(xrootd, payload, remote_dir):
    try:
        import gfal2
    except ImportError as exc:
        unavailable("Debian python3-gfal2 not linked into this venv: %s" % exc)
    src, cksum = payload
    ctx = gfal2.creat_context()
    params = ctx.transfer_parameters()
    params.overwrite = True
    params.create_parent = True
    params.timeout = 600
    params.set_checksum(gfal2.checksum_mode.both, "ADLER32", cksum)
    url = "root://%s:%d//%s/py.bin" % (HOST, XRD_PORT, remote_dir)
    ctx.filecopy(params, "file://" + src, url)
    assert ctx.checksum(url, "ADLER32").lower().zfill(8) == cksum
    assert ctx.stat(url).st_size == 1 << 20


# --- nginx WebDAV --------------------------------------------------------------------------

@pytest.mark.parametrize("scheme,port", [("http", NGINX_HTTP_PORT), ("https", NGINX_HTTPS_PORT)])
def test_nginx_put_get(nginx, payload, remote_dir, scheme, port):
    src, _ = payload
    with open(src, "rb") as f:
        data = f.read()
    base = "%s://%s:%d/%s" % (scheme, HOST, port, remote_dir)
    status, _, body = http("PUT", base + "/deep/er/n.bin", data=data)   # create_full_put_path
    assert status in (201, 204), body
    assert same_content(src, os.path.join(STORAGE_DATA, remote_dir, "deep/er/n.bin"))
    status, _, body = http("GET", base + "/deep/er/n.bin")
    assert status == 200 and body == data
    # MKCOL without a trailing slash (rewritten), PROPFIND, MOVE, DELETE
    status, _, body = http("MKCOL", base + "/col")
    assert status == 201, body
    assert os.path.isdir(os.path.join(STORAGE_DATA, remote_dir, "col"))
    status, _, body = http("PROPFIND", base + "/deep/er/", headers={"Depth": "1"})
    assert status == 207 and b"n.bin" in body
    status, _, _ = http("MOVE", base + "/deep/er/n.bin", headers={"Destination": base + "/col/m.bin"})
    assert status in (201, 204)  # nginx answers 204 even for a new destination
    status, _, _ = http("DELETE", base + "/col/m.bin")
    assert status == 204
    assert not os.path.exists(os.path.join(STORAGE_DATA, remote_dir, "col/m.bin"))


def test_nginx_davs_gfal_without_checksum(nginx, payload, remote_dir, tmp_path):
    """gfal-copy to davs:// on nginx works; checksums are not supported there (errno 38)."""
    require_tool("gfal-copy", "gfal-sum")
    src, _ = payload
    url = "davs://%s:%d/%s/nd.bin" % (HOST, NGINX_HTTPS_PORT, remote_dir)
    run(["gfal-copy", "-f", "-t", "600", "-p", "file://" + src, url])
    dst = str(tmp_path / "back.bin")
    run(["gfal-copy", "-f", "-t", "600", url, "file://" + dst])
    assert same_content(src, dst)
    proc = run(["gfal-sum", url, "ADLER32"], check=False)
    assert proc.returncode != 0, proc.stdout
    assert "not supported" in proc.stdout or "38" in proc.stdout, proc.stdout


# --- Rucio ---------------------------------------------------------------------------------

def test_rucio_bootstrap(rucio_client):
    client = rucio_client
    assert client.whoami()["account"] == "root"
    rses = {r["rse"] for r in client.list_rses()}
    assert {"PILOT_POSIX", "PILOT_XRD", "PILOT_DAVS"} <= rses
    schemes = {p["scheme"] for p in client.get_rse("PILOT_XRD")["protocols"]}
    assert schemes == {"root", "davs", "https", "file"}
    assert set(SCOPES) <= set(client.list_scopes())
    assert client.list_rse_attributes("PILOT_DAVS").get("verify_checksum") in (False, "False", "false")
    # unlimited local account limits (-1 is reported as infinity)
    limits = client.get_local_account_limits("root")
    for rse in ("PILOT_POSIX", "PILOT_XRD", "PILOT_DAVS"):
        assert limits.get(rse) in (-1, float("inf"), None) or limits.get(rse) > 1e15, limits


RUCIO_CASES = [
    # rse, impl, directory behind the RSE's file prefix (None: not on the shared disk)
    ("PILOT_POSIX", None, "rucio/posix"),
    ("PILOT_XRD", "xrootd", "rucio/xrd"),
    ("PILOT_XRD", "gfal", "rucio/xrd"),
    ("PILOT_XRD", "webdav", "rucio/xrd"),
    ("PILOT_DAVS", "gfal", "rucio/davs"),
]


@pytest.mark.parametrize("rse,impl,subdir", RUCIO_CASES, ids=["%s-%s" % (c[0], c[1] or "posix") for c in RUCIO_CASES])
def test_rucio_upload_list_download(rucio_client, payload, tmp_path, rse, impl, subdir):
    if impl in ("xrootd", "gfal", "webdav"):
        require_port("xrootd", XRD_PORT)
    if rse == "PILOT_DAVS":
        require_port("nginx (https)", NGINX_HTTPS_PORT)
    if impl == "gfal":
        try:
            import gfal2  # noqa: F401
        except ImportError as exc:
            unavailable("Debian python3-gfal2 not linked into this venv: %s" % exc)
    if impl == "xrootd":
        require_tool("xrdcp")
    from rucio.client.downloadclient import DownloadClient
    from rucio.client.uploadclient import UploadClient

    logger = logging.getLogger("test_servers.rucio")
    src, cksum = payload
    name = "smoke.%s.%s.bin" % (rse.lower(), uuid.uuid4().hex[:12])
    item = {"path": src, "rse": rse, "did_scope": SCOPE, "did_name": name}
    if impl:
        item["impl"] = impl
    # rucio-clients 41.5.1: UploadClient(logger=<Logger>, tracing=False) raises TypeError (it calls
    # the logger object), so keep tracing on; the server answers the trace POST with 404, harmlessly.
    UploadClient(_client=rucio_client, logger=logger).upload([item])

    # on the shared disk under the RSE's prefix, lfn2pfn 'hash'
    on_disk = rucio_hash_path(os.path.join(STORAGE_DATA, subdir), SCOPE, name)
    assert os.path.isfile(on_disk), on_disk
    assert same_content(src, on_disk)

    replicas = list(rucio_client.list_replicas([{"scope": SCOPE, "name": name}],
                                               schemes=["root", "davs", "https", "file"]))
    assert len(replicas) == 1
    rep = replicas[0]
    assert rep["adler32"].zfill(8) == cksum
    assert rep["bytes"] == 1 << 20
    assert rse in rep["rses"] and rep["rses"][rse], rep
    pfns = rep["rses"][rse]
    if rse == "PILOT_XRD":
        schemes = {p.split(":", 1)[0] for p in pfns}
        assert {"root", "davs", "https", "file"} <= schemes, pfns
        # the pilot's xrdcp needs the absolute form root://host:port//path
        assert "root://%s:%d//rucio/xrd/%s/" % (HOST, XRD_PORT, SCOPE) in " ".join(pfns), pfns
        assert "davs://%s:%d/rucio/xrd/%s/" % (HOST, XRD_PORT, SCOPE) in " ".join(pfns), pfns

    ditem = {"did": "%s:%s" % (SCOPE, name), "base_dir": str(tmp_path / "dl"), "rse": rse}
    if impl:
        ditem["impl"] = impl
    results = DownloadClient(client=rucio_client, logger=logger, tracing=False).download_dids([ditem])
    assert results and results[0]["clientState"] in ("DONE", "ALREADY_DONE"), results
    got = tmp_path / "dl" / SCOPE / name
    assert got.is_file()
    assert same_content(src, str(got))
