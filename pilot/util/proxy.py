"""Proxy and token lifetimes, and keeping the pilot's credentials away from the payload.

Lifetimes are read from the credential files themselves:

* an X.509 proxy: the ``notAfter`` of its first certificate, read from the certificate's DER by the
  small walker below (no subprocess and no import of ``cryptography``: the check runs before every
  getJob and its cost is the pilot's start-up); ``backend='cryptography'`` or ``'openssl'`` (``openssl
  x509 -enddate -noout``) read it with those instead; the VOMS attribute certificate's end is read from
  the proxy's VOMS extension (OID 1.3.6.1.4.1.8005.100.100.5) with the same walker;
* an OIDC token file: the ``exp`` claim of the JWT (base64 decoded, the signature is not verified).

``voms-proxy-info`` and ``arcproxy`` are not needed.

Codes (Pilot 2 / Pilot 3): 1163 NOPROXY (no credential), 1177 NOVOMSPROXY (no readable VOMS
attributes), 1370 VOMSPROXYABOUTTOEXPIRE, 1373 CERTIFICATEHASEXPIRED, 1382 PROXYTOOSHORT (the 72 h
start-up limit). A limit is given in hours; 20 minutes of grace are allowed, as in Pilot 3.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import timezone
from typing import TYPE_CHECKING, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from pilot.common.errorcodes import ErrorCodes
from pilot.util.processes import run_command

if TYPE_CHECKING:
    from pilot.control.context import Communicator

logger = logging.getLogger(__name__)

#: OID of the VOMS attribute-certificate extension, DER encoded (without tag and length)
VOMS_AC_OID = bytes.fromhex("2b06010401be45646405")  # 1.3.6.1.4.1.8005.100.100.5
#: seconds of grace below the requested limit (Pilot 3)
GRACE = 20 * 60
#: the limit (hours) used at pilot start-up; a shorter credential gives 1382
STARTUP_LIMIT = 72
#: environment variables that point at the pilot's own credentials
PROXY_VARIABLES = ("X509_USER_PROXY", "X509_USER_CERT", "X509_USER_KEY")
TOKEN_VARIABLES = ("BEARER_TOKEN", "BEARER_TOKEN_FILE", "OIDC_AUTH_TOKEN", "OIDC_AUTH_ORIGIN", "OIDC_AUTH_DIR",
                   "PANDA_AUTH_TOKEN", "PANDA_AUTH_ORIGIN", "PANDA_AUTH_DIR", "PANDA_AUTH_TOKEN_KEY",
                   "ACCESS_TOKEN", "ACCESS_TOKEN_FILE", "XDG_RUNTIME_DIR_TOKEN")
#: name of the user's proxy written into a job's work dir (analysis jobs)
PAYLOAD_PROXY_NAME = "payload_x509.proxy"

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)


@dataclass
class CredentialLifetime:
    """When a credential stops being valid (epoch seconds; None when unknown)."""

    path: str
    cert_end: Optional[float] = None   # notAfter of the proxy (or plain) certificate
    voms_end: Optional[float] = None   # end of the VOMS attributes, when the proxy has them
    kind: str = "x509"                 # x509 or token

    def seconds_left(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds until the earliest known end."""
        ends = [e for e in (self.cert_end, self.voms_end) if e is not None]
        if not ends:
            return None
        return min(ends) - (time.time() if now is None else now)


def _timegm(parts: Union[time.struct_time, Tuple[int, ...]]) -> int:
    """``calendar.timegm``, loaded when a certificate time is read (not at every pilot start)."""
    import calendar

    return calendar.timegm(parts)


# ------------------------------------------------------------------------------ X.509

def default_proxy_path(environ: Optional[Mapping[str, str]] = None) -> str:
    """``X509_USER_PROXY``, else ``/tmp/x509up_u<uid>`` (whether or not it exists)."""
    env = os.environ if environ is None else environ
    return env.get("X509_USER_PROXY") or f"/tmp/x509up_u{os.getuid()}"


def pem_certificates(data: bytes) -> List[bytes]:
    """DER bytes of every certificate in a PEM text, in file order."""
    out = []
    for match in _PEM_CERT.finditer(data):
        try:
            out.append(base64.b64decode(b"".join(match.group(1).split()), validate=True))
        except (binascii.Error, ValueError):
            continue
    return out


def _cert_end_cryptography(der: bytes) -> Optional[float]:
    try:
        from cryptography import x509  # optional dependency
    except ImportError:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        logger.warning("cannot parse certificate: %s", exc)
        return None
    end = getattr(cert, "not_valid_after_utc", None)
    if end is None:  # cryptography < 42
        end = cert.not_valid_after.replace(tzinfo=timezone.utc)
    return end.timestamp()


def _cert_end_openssl(path: str) -> Optional[float]:
    result = run_command(["openssl", "x509", "-enddate", "-noout", "-in", path], timeout=30)
    if result.exit_code != 0:
        logger.warning("openssl cannot read %s: %s", path, result.stderr.strip()[:200])
        return None
    return parse_openssl_enddate(result.stdout)


def parse_openssl_enddate(text: str) -> Optional[float]:
    """``notAfter=Nov 23 02:29:31 2026 GMT`` -> epoch seconds."""
    match = re.search(r"notAfter=(.+)", text or "")
    if not match:
        return None
    value = " ".join(match.group(1).split())
    for fmt in ("%b %d %H:%M:%S %Y %Z", "%Y-%m-%d %H:%M:%SZ"):
        try:
            return float(_timegm(time.strptime(value, fmt)))
        except ValueError:
            continue
    return None


def use_cryptography() -> bool:
    """True when the ``cryptography`` package can be imported."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return False
    return True


def x509_lifetime(path: str, backend: Optional[str] = None) -> CredentialLifetime:
    """Read a proxy (or certificate) file: end of the first certificate and of its VOMS attributes.

    ``backend`` forces ``cryptography`` or ``openssl`` (default: ``der``, the walker below).
    Raises OSError when the file cannot be read, ValueError when it holds no certificate.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    certs = pem_certificates(data)
    if not certs:
        raise ValueError(f"{path} contains no PEM certificate")
    if backend == "cryptography":
        end = _cert_end_cryptography(certs[0])
    elif backend == "openssl":
        end = _cert_end_openssl(path)
    else:
        end = cert_end_der(certs[0])
    if end is None:
        raise ValueError(f"cannot read the end date of the certificate in {path}")
    return CredentialLifetime(path=path, cert_end=end, voms_end=voms_end(certs[0]))


# --- a minimal DER walker: enough to find the VOMS AC validity period -------------------------
def _der_items(data: bytes, start: int = 0, end: Optional[int] = None) -> Iterable[Tuple[int, int, int]]:
    """Yield (tag, content start, content end) of the TLVs in data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    while pos + 2 <= end:
        tag = data[pos]
        length = data[pos + 1]
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or pos + count > end:
                return
            length = int.from_bytes(data[pos:pos + count], "big")
            pos += count
        if pos + length > end:
            return
        yield tag, pos, pos + length
        pos += length


def _generalized_time(raw: bytes) -> Optional[float]:
    """GeneralizedTime ``YYYYMMDDHHMMSS[.fff]Z`` -> epoch seconds (None when malformed).

    Read digit by digit: ``time.strptime`` would load ``_strptime`` and compile its locale regular
    expressions on the first call, which cost more CPU than the rest of the pre-getJob check.
    """
    text = raw.decode("ascii", errors="replace").rstrip("Z")
    text = text.split(".")[0][:14]
    if len(text) != 14 or not text.isdigit() or not text.isascii():
        return None
    year, month, day, hour, minute, second = (int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]),
                                              int(text[10:12]), int(text[12:14]))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 61):
        return None
    return float(_timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def _utc_time(raw: bytes) -> Optional[float]:
    """UTCTime ``YYMMDDHHMMSSZ`` (RFC 5280: YY < 50 is 20YY, else 19YY)."""
    text = raw.decode("ascii", errors="replace")
    if len(text) != 13 or not text.endswith("Z") or not text[:12].isdigit():
        return None
    century = "20" if int(text[:2]) < 50 else "19"
    return _generalized_time((century + text).encode())


def cert_end_der(der: bytes) -> Optional[float]:
    """``notAfter`` of a DER certificate (None when it is not one): Certificate -> tbsCertificate ->
    validity, the fifth field after the optional ``[0]`` version (RFC 5280 4.1)."""
    outer = list(_der_items(der))
    if not outer or outer[0][0] != 0x30:
        return None
    cert = list(_der_items(der, outer[0][1], outer[0][2]))
    if not cert or cert[0][0] != 0x30:
        return None
    fields = list(_der_items(der, cert[0][1], cert[0][2]))
    if fields and fields[0][0] == 0xA0:
        fields = fields[1:]
    if len(fields) < 4 or fields[3][0] != 0x30:
        return None
    times = list(_der_items(der, fields[3][1], fields[3][2]))
    if len(times) != 2:
        return None
    tag, start, end = times[1]
    if tag == 0x17:
        return _utc_time(der[start:end])
    if tag == 0x18:
        return _generalized_time(der[start:end])
    return None


def _find_validity(data: bytes, start: int, end: int, depth: int = 0) -> Optional[float]:
    """notAfter of the first SEQUENCE made of exactly two GeneralizedTime values."""
    if depth > 12:
        return None
    for tag, cstart, cend in _der_items(data, start, end):
        if tag == 0x30:
            children = list(_der_items(data, cstart, cend))
            if len(children) == 2 and all(child[0] == 0x18 for child in children):
                return _generalized_time(data[children[1][1]:children[1][2]])
        if tag & 0x20:  # constructed: look inside
            found = _find_validity(data, cstart, cend, depth + 1)
            if found is not None:
                return found
        elif tag == 0x04:  # OCTET STRING: extension values wrap DER
            found = _find_validity(data, cstart, cend, depth + 1)
            if found is not None:
                return found
    return None


def voms_end(der: bytes) -> Optional[float]:
    """End of the VOMS attribute certificate embedded in a certificate (None without VOMS extension)."""
    index = der.find(b"\x06" + bytes([len(VOMS_AC_OID)]) + VOMS_AC_OID)
    if index < 0:
        return None
    # the extension value (an OCTET STRING) follows the OID, possibly after a 'critical' BOOLEAN
    start = index + 2 + len(VOMS_AC_OID)
    for tag, cstart, cend in _der_items(der, start):
        if tag == 0x04:
            return _find_validity(der, cstart, cend)
        if tag != 0x01:
            break
    return None


# ------------------------------------------------------------------------------ tokens
def token_expiry(token: str) -> Optional[float]:
    """The ``exp`` claim of a JWT (no signature check); None when the text is not a JWT with exp."""
    parts = token.strip().split(".")
    if len(parts) < 2:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


def token_lifetime(path: str) -> CredentialLifetime:
    """Lifetime of an OIDC token file. Raises OSError (unreadable) or ValueError (no exp claim)."""
    with open(path, errors="replace") as handle:
        end = token_expiry(handle.read())
    if end is None:
        raise ValueError(f"{path} holds no JWT with an exp claim")
    return CredentialLifetime(path=path, cert_end=end, kind="token")


def token_path(environ: Optional[Mapping[str, str]] = None) -> str:
    """The pilot's token file: ``BEARER_TOKEN_FILE``, else ``$PANDA_AUTH_DIR/$PANDA_AUTH_TOKEN``/``OIDC_AUTH_*``."""
    env = os.environ if environ is None else environ
    if env.get("BEARER_TOKEN_FILE"):
        return env["BEARER_TOKEN_FILE"]
    for dir_var, name_var in (("PANDA_AUTH_DIR", "PANDA_AUTH_TOKEN"), ("OIDC_AUTH_DIR", "OIDC_AUTH_TOKEN")):
        if env.get(dir_var) and env.get(name_var):
            return os.path.join(env[dir_var], env[name_var])
    return ""


# ------------------------------------------------------------------------------ checks
def check_time_left(name: str, end: Optional[float], limit: float, now: Optional[float] = None) -> Tuple[int, str]:
    """(code, diag) for a credential part that ends at ``end`` when ``limit`` hours are needed."""
    if end is None:
        return 0, ""
    now = time.time() if now is None else now
    left = end - now
    hours = left / 3600.0
    if left <= 0:
        return ErrorCodes.CERTIFICATEHASEXPIRED, f"{name} has expired ({-hours:.2f} h ago)"
    if left < limit * 3600 - GRACE:
        if limit >= STARTUP_LIMIT:
            return ErrorCodes.PROXYTOOSHORT, f"{name} is too short for the pilot start-up: {hours:.2f} h left"
        if name == "certificate":
            return ErrorCodes.CERTIFICATEHASEXPIRED, f"{name} is about to expire: {hours:.2f} h left"
        return ErrorCodes.VOMSPROXYABOUTTOEXPIRE, f"{name} is about to expire: {hours:.2f} h left"
    return 0, ""


def verify_x509(path: str, limit: float = 1, require_voms: bool = False, now: Optional[float] = None,
                backend: Optional[str] = None) -> Tuple[int, str]:
    """Check a proxy file against a limit in hours: (0, '') when it is good for that long."""
    if not path or not os.path.isfile(path):
        return ErrorCodes.NOPROXY, f"proxy file not found: {path or '(none)'}"
    try:
        life = x509_lifetime(path, backend=backend)
    except (OSError, ValueError) as exc:
        return ErrorCodes.NOPROXY, f"cannot read proxy {path}: {exc}"
    code, diag = check_time_left("certificate", life.cert_end, limit, now)
    if code:
        return code, diag
    if life.voms_end is None:
        if require_voms:
            return ErrorCodes.NOVOMSPROXY, f"proxy {path} has no VOMS attributes"
        return 0, ""
    if life.voms_end <= (time.time() if now is None else now):
        return ErrorCodes.NOVOMSPROXY, f"the VOMS attributes of {path} have expired"
    return check_time_left("VOMS proxy", life.voms_end, limit, now)


def verify_token(path: str, limit: float = 1, now: Optional[float] = None) -> Tuple[int, str]:
    """Check an OIDC token file against a limit in hours."""
    if not path or not os.path.isfile(path):
        return ErrorCodes.NOPROXY, f"token file not found: {path or '(none)'}"
    try:
        life = token_lifetime(path)
    except (OSError, ValueError) as exc:
        return ErrorCodes.NOPROXY, f"cannot read token {path}: {exc}"
    return check_time_left("token", life.cert_end, limit, now)


# ------------------------------------------------------------------------------ isolation
def pilot_credential_paths(environ: Optional[dict] = None) -> List[str]:
    """Existing files and directories holding the pilot's own proxy, certificate, key or token."""
    env = os.environ if environ is None else environ
    paths = [default_proxy_path(env), f"/tmp/x509up_u{os.getuid()}"]
    paths += [env.get(name, "") for name in ("X509_USER_CERT", "X509_USER_KEY")]
    paths += [token_path(env), env.get("PANDA_AUTH_DIR", ""), env.get("OIDC_AUTH_DIR", "")]
    out: List[str] = []
    for path in paths:
        if path and os.path.exists(path):
            real = os.path.realpath(path)
            if real not in out:
                out.append(real)
    return out


def _inside(path: str, directory: str) -> bool:
    """True when ``path`` is ``directory`` or lies below it (both real paths)."""
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def payload_visible_credentials(payload_env: Dict[str, str], workdir: str) -> List[str]:
    """Real paths of the credentials a payload may read: its own proxy, and the proxy its environment names."""
    keep = [payload_proxy_path(workdir)] if workdir else []
    if payload_env.get("X509_USER_PROXY"):
        keep.append(payload_env["X509_USER_PROXY"])
    return [os.path.realpath(path) for path in keep]


def masked_credential_paths(payload_env: Dict[str, str], workdir: str,
                            pilot_environs: Sequence[Mapping[str, str]] = ()) -> List[str]:
    """The pilot's credential files and directories to hide from a payload (real paths, no nesting).

    ``pilot_environs`` are the environments that may name the pilot's credentials (default: the
    pilot's own). Kept visible: whatever :func:`payload_visible_credentials` returns. A directory
    that holds the job's work dir or a kept file is not covered as a whole (its credential files
    are masked one by one); a path inside a covered directory is left to that directory.
    """
    keep = payload_visible_credentials(payload_env, workdir)
    work = os.path.realpath(workdir) if workdir else ""
    found: List[str] = []
    for environ in pilot_environs or (os.environ,):
        found += [path for path in pilot_credential_paths(dict(environ)) if path not in found]
    candidates = [path for path in found if path not in keep]
    dirs = [path for path in candidates if os.path.isdir(path)
            and not (work and _inside(work, path)) and not any(_inside(k, path) for k in keep)]
    files = [path for path in candidates if not os.path.isdir(path)]
    covered = [path for path in dirs if not any(other != path and _inside(path, other) for other in dirs)]
    return covered + [path for path in files if not any(_inside(path, d) for d in covered)]


#: variables that hold a token itself (not a path to one): read once at start-up, then removed
TOKEN_VALUE_VARIABLES = ("BEARER_TOKEN", "ACCESS_TOKEN")


def forget_token_values(environ: Optional[dict] = None) -> List[str]:
    """Remove the variables that hold a token's value from the pilot's own environment; their names.

    Called once the HTTP client holds the token (:func:`pilot.util.httpbuild.BearerToken.from_environ`):
    from then on the token lives only in the pilot's memory, neither in ``/proc/<pilot>/environ`` nor
    in the environment of anything the pilot starts.
    """
    env = os.environ if environ is None else environ
    removed = [name for name in TOKEN_VALUE_VARIABLES if name in env]
    for name in removed:
        if env is os.environ:
            _wipe_process_environ(name)
        del env[name]
    return removed


def _wipe_process_environ(name: str) -> None:
    """Overwrite the value of ``name`` in the process's C environment with NUL bytes.

    ``/proc/<pid>/environ`` shows the environment block the process was started with; removing a
    variable (``unsetenv``) only drops the pointer to it, so the value itself is zeroed first.
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.getenv.restype = ctypes.c_void_p
        address = libc.getenv(name.encode())
        if address:
            ctypes.memset(address, 0, len(ctypes.string_at(address)))
    except (OSError, AttributeError) as exc:  # no libc to call: the variable is still removed
        logger.debug("cannot wipe %s from the process environment: %s", name, exc)


def strip_credentials(env: Dict[str, str]) -> Dict[str, str]:
    """A copy of ``env`` without the variables that point at (or hold) the pilot's credentials."""
    return {k: v for k, v in env.items() if k not in PROXY_VARIABLES and k not in TOKEN_VARIABLES}


def payload_proxy_path(workdir: str) -> str:
    """Where a job's own (user) proxy is stored."""
    return os.path.join(workdir, PAYLOAD_PROXY_NAME)


def write_payload_proxy(workdir: str, text: str) -> str:
    """Write the user's proxy into the job dir with mode 0600 (created so, never world-readable)."""
    path = payload_proxy_path(workdir)
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def fetch_payload_proxy(communicator: Communicator, workdir: str, role: str = "atlas") -> Tuple[str, str]:
    """Ask the server for the user's proxy (getProxy) and store it in the job dir: (path, '') or ('', diag)."""
    getter = getattr(communicator, "get_proxy", None)
    if getter is None:
        return "", "the communicator cannot fetch proxies"
    try:
        reply = getter(role)
    except Exception as exc:  # any transport failure: the job then runs without a user proxy
        return "", f"getProxy failed: {exc}"
    if str((reply or {}).get("StatusCode", "")) != "0" or not (reply or {}).get("userProxy"):
        return "", f"getProxy refused: {(reply or {}).get('errorDialog', '') or reply}"
    return write_payload_proxy(workdir, str(reply["userProxy"])), ""


def isolate_credentials(env: Dict[str, str], workdir: str, keep_pilot_proxy: bool = False,
                        pilot_environ: Optional[dict] = None) -> Dict[str, str]:
    """The payload's environment: the pilot's credential variables removed; the job's own proxy if any.

    ``keep_pilot_proxy`` keeps ``X509_USER_PROXY`` pointing at the pilot's proxy (jobs that read
    their inputs directly with the pilot's identity).
    """
    pilot_env = os.environ if pilot_environ is None else pilot_environ
    out = strip_credentials(env)
    user_proxy = payload_proxy_path(workdir) if workdir else ""
    if user_proxy and os.path.isfile(user_proxy):
        out["X509_USER_PROXY"] = user_proxy
    elif keep_pilot_proxy:
        path = default_proxy_path(pilot_env)
        if os.path.isfile(path):
            out["X509_USER_PROXY"] = path
    return out


def distinguished_name(path: str) -> str:
    """The DN of the certificate's owner in ``/DC=.../CN=...`` form, proxy ``CN=<number>`` parts removed.

    Used for ``-j self`` (prodUserID of getJob). Read with ``openssl x509``; '' when it cannot be read.
    """
    from pilot.util.processes import run_command

    if not path or not os.path.isfile(path):
        return ""
    result = run_command(["openssl", "x509", "-in", path, "-noout", "-subject", "-nameopt", "compat"], timeout=30)
    if result.exit_code != 0:
        return ""
    subject = result.stdout.strip().split("subject=", 1)[-1].strip()
    parts = [p for p in subject.split("/") if p]
    if len(parts) <= 1 and "," in subject:  # RFC 2253 style: 'CN=x, O=y' (most significant last)
        parts = [p.strip() for p in reversed(subject.split(","))]
    while parts and parts[-1].startswith("CN=") and parts[-1][3:].isdigit():
        parts.pop()  # proxy certificate components
    while parts and parts[-1] in ("CN=proxy", "CN=limited proxy"):
        parts.pop()
    return "/" + "/".join(parts) if parts else ""
