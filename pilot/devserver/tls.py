"""TLS material for the dev server's HTTPS port, made once per directory and reused.

Files written into the TLS directory:

``ca.pem`` / ``ca.key``         a private CA that clients trust (``cacert`` in devserver.json)
``server.pem`` / ``server.key`` the server certificate for 127.0.0.1, ::1 and localhost, signed by the CA
``client-proxy.pem``            a client certificate and its key in one file, usable as X509_USER_PROXY
                                by pilots that insist on presenting one (the server does not check it)
``certificates/``               the CA under its OpenSSL subject-hash name (``<hash>.0``), usable as
                                X509_CERT_DIR / ``curl --capath`` (needs the ``openssl`` command)

Two ways to make them, same files: with the ``cryptography`` package when it is installed, else with
the ``openssl`` command (OpenSSL 1.1.1 or newer; present on practically every Linux node). The
``openssl`` fallback keeps the demo and the dev server working on a plain Python with nothing
installed; declaring ``cryptography`` as an extra would make the demo install packages first, which a
worker node or an offline machine may not allow.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:  # a plain Python: the openssl command makes the same files
    x509 = None  # type: ignore[assignment]  # tested before use

logger = logging.getLogger(__name__)

VALID_DAYS = 825


@dataclass(frozen=True)
class TLSMaterial:
    """Paths of the generated TLS files."""

    cacert: Path
    cert: Path
    key: Path
    client_proxy: Path
    certdir: Path


def _key() -> "rsa.RSAPrivateKey":
    """A fresh RSA key (RSA keeps old clients such as Pilot 2's curl happy)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: "rsa.RSAPrivateKey") -> bytes:
    """Unencrypted PKCS#8 PEM of a key."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    """Write a file atomically (mode 0600 for keys)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _name(common_name: str) -> "x509.Name":
    """A subject/issuer name."""
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PanDA pilot dev server"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(subject: str, key: "rsa.RSAPrivateKey", ca_key: "rsa.RSAPrivateKey", ca_cert: "x509.Certificate | None",
           *, server: bool = False) -> "x509.Certificate":
    """Issue a certificate: self-signed CA when ``ca_cert`` is None, else a leaf signed by the CA."""
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer = ca_cert.subject if ca_cert is not None else _name(subject)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca_cert is None:
        builder = (builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=True, crl_sign=True, encipher_only=False,
                                                decipher_only=False), critical=True))
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=True, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=False, crl_sign=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if server:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                     x509.IPAddress(ipaddress.ip_address("::1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _hash_link(cacert: Path, certdir: Path) -> None:
    """Put the CA into ``certdir`` under its OpenSSL subject hash, when the openssl command exists."""
    certdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cacert, certdir / "devserver-ca.pem")
    openssl = shutil.which("openssl")
    if not openssl:
        logger.warning("openssl not found: %s has no hash-named CA file", certdir)
        return
    result = subprocess.run([openssl, "x509", "-hash", "-noout", "-in", str(cacert)],
                            capture_output=True, text=True, timeout=30, check=False)
    digest = result.stdout.strip()
    if result.returncode == 0 and digest:
        shutil.copyfile(cacert, certdir / f"{digest}.0")
    else:
        logger.warning("openssl x509 -hash failed: %s", result.stderr.strip())


def ensure_tls_material(directory: "str | os.PathLike[str]", backend: str = "") -> TLSMaterial:
    """Return the TLS files in ``directory``, creating any that are missing (all at once).

    ``backend``: ``cryptography`` or ``openssl``; empty: cryptography when installed, else openssl.
    """
    root = Path(directory)
    material = TLSMaterial(cacert=root / "ca.pem", cert=root / "server.pem", key=root / "server.key",
                           client_proxy=root / "client-proxy.pem", certdir=root / "certificates")
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # servers sharing a directory must not mix two CAs
        needed = (material.cacert, material.cert, material.key, material.client_proxy, root / "ca.key")
        if not all(path.exists() for path in needed):
            if (backend or ("cryptography" if x509 is not None else "openssl")) == "openssl":
                _generate_with_openssl(root, material)
            else:
                _generate(root, material)
        if not material.certdir.is_dir():
            _hash_link(material.cacert, material.certdir)
    return material


def _generate(root: Path, material: TLSMaterial) -> None:
    """Create a CA, a server certificate and a client credential (dropping a stale hash directory)."""
    shutil.rmtree(material.certdir, ignore_errors=True)
    ca_key = _key()
    ca_cert = _issue("PanDA pilot dev server CA", ca_key, ca_key, None)
    server_key = _key()
    server_cert = _issue("localhost", server_key, ca_key, ca_cert, server=True)
    client_key = _key()
    client_cert = _issue("devserver pilot", client_key, ca_key, ca_cert)
    pem = serialization.Encoding.PEM
    _write(root / "ca.key", _key_pem(ca_key), private=True)
    _write(material.key, _key_pem(server_key), private=True)
    _write(material.client_proxy, client_cert.public_bytes(pem) + _key_pem(client_key) + ca_cert.public_bytes(pem),
           private=True)
    _write(material.cert, server_cert.public_bytes(pem))
    _write(material.cacert, ca_cert.public_bytes(pem))
    logger.info("created TLS material in %s", root)


# ------------------------------------------------------------------------------ openssl command
_SUBJECT = "/O=PanDA pilot dev server/CN={}"
_CA_EXTENSIONS = ("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,digitalSignature,keyCertSign,"
                  "cRLSign\nsubjectKeyIdentifier=hash\n")
_LEAF_EXTENSIONS = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage={usage}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
_SERVER_NAMES = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"


def _openssl(*args: str) -> None:
    """Run one openssl command (bounded); a failure raises RuntimeError with its message."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise RuntimeError("cannot make the dev server's TLS material: neither the cryptography package nor "
                           "the openssl command is available (install one, or run the server without HTTPS)")
    result = subprocess.run([openssl, *args], capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()[-500:]}")


def _openssl_leaf(tmp: Path, name: str, subject: str, usage: str, ca_cert: Path, ca_key: Path) -> tuple:
    """A key and a certificate signed by the CA, made with openssl: (key PEM, certificate PEM)."""
    ext = tmp / f"{name}.ext"
    ext.write_text(_LEAF_EXTENSIONS.format(usage=usage) + (_SERVER_NAMES if usage == "serverAuth" else ""))
    key, csr, cert = tmp / f"{name}.key", tmp / f"{name}.csr", tmp / f"{name}.pem"
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", _SUBJECT.format(subject))
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", str(VALID_DAYS), "-sha256",
             "-extfile", str(ext), "-out", str(cert))
    return key.read_bytes(), cert.read_bytes()


def _generate_with_openssl(root: Path, material: TLSMaterial) -> None:
    """The same files as :func:`_generate`, made with the openssl command (no Python package needed)."""
    shutil.rmtree(material.certdir, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".tls-", dir=root) as tmpdir:
        tmp = Path(tmpdir)
        ca_key, ca_cert, ext = tmp / "ca.key", tmp / "ca.pem", tmp / "ca.ext"
        ext.write_text(_CA_EXTENSIONS)
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_cert),
                 "-days", str(VALID_DAYS), "-sha256", "-subj", _SUBJECT.format("PanDA pilot dev server CA"),
                 "-extensions", "v3_pilot_ca", "-config", str(_ca_config(tmp)))
        server_key, server_cert = _openssl_leaf(tmp, "server", "localhost", "serverAuth", ca_cert, ca_key)
        client_key, client_cert = _openssl_leaf(tmp, "client", "devserver pilot", "clientAuth", ca_cert, ca_key)
        _write(root / "ca.key", ca_key.read_bytes(), private=True)
        _write(material.key, server_key, private=True)
        _write(material.client_proxy, client_cert + client_key + ca_cert.read_bytes(), private=True)
        _write(material.cert, server_cert)
        _write(material.cacert, ca_cert.read_bytes())
    logger.info("created TLS material in %s with the openssl command", root)


def _ca_config(tmp: Path) -> Path:
    """A minimal openssl config whose v3_pilot_ca section holds the CA's extensions."""
    path = tmp / "ca.cnf"
    path.write_text("[req]\ndistinguished_name = dn\n[dn]\n[v3_pilot_ca]\n" + _CA_EXTENSIONS)
    return path
