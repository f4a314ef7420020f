#!/usr/bin/env python3
"""Configure the loopback Rucio server over REST (idempotent).

Run by ci/storage/start-rucio.sh with the Rucio server venv's python and
RUCIO_CONFIG pointing at the *client* config (no [database] section).

Creates:
  RSE PILOT_POSIX  file  (posix)          $STORAGE_DATA/rucio/posix/
  RSE PILOT_XRD    root  (xrootd)         root://127.0.0.1:1094//rucio/xrd/  (prefix '//rucio/xrd/':
                                          xrootd 5.5 refuses the relative path of root://h:p/rucio/...)
                   davs  (gfal)           davs://127.0.0.1:1094/rucio/xrd/
                   https (webdav)         https://127.0.0.1:1094/rucio/xrd/
                   file  (posix)          $STORAGE_DATA/rucio/xrd/   (same files)
  RSE PILOT_DAVS   davs  (gfal, nginx)    davs://127.0.0.1:18443/rucio/davs/  verify_checksum=False
  scopes tests pilot user.root mc_test data_test (account root)
  unlimited local account limits for root on every RSE
and the prefix directories under $STORAGE_DATA.
"""

import os
import sys

from rucio.client import Client
from rucio.common.exception import Duplicate, RSENotFound

STORAGE_DATA = os.environ.get("STORAGE_DATA", "/tmp/pilot-storage/data")
HOST = os.environ.get("STORAGE_HOST", "127.0.0.1")
XRD_PORT = int(os.environ.get("STORAGE_XROOTD_PORT", "1094"))
NGINX_HTTPS_PORT = int(os.environ.get("STORAGE_NGINX_HTTPS_PORT", "18443"))
ACCOUNT = "root"
SCOPES = ["tests", "pilot", "user.root", "mc_test", "data_test"]

PROTO_IMPL = {
    "file": "rucio.rse.protocols.posix.Default",
    "root": "rucio.rse.protocols.xrootd.Default",
    "davs": "rucio.rse.protocols.gfal.Default",
    "https": "rucio.rse.protocols.webdav.Default",
}


def domains(prio, tpc=True):
    """Same priority for read/write/delete on lan and wan."""
    wan = {"read": prio, "write": prio, "delete": prio,
           "third_party_copy_read": prio if tpc else 0,
           "third_party_copy_write": prio if tpc else 0}
    return {"lan": {"read": prio, "write": prio, "delete": prio}, "wan": wan}


def proto(scheme, hostname, port, prefix, prio, tpc=True):
    return {"scheme": scheme, "hostname": hostname, "port": port, "prefix": prefix,
            "impl": PROTO_IMPL[scheme], "domains": domains(prio, tpc), "extended_attributes": None}


RSES = {
    "PILOT_POSIX": {
        "dir": os.path.join(STORAGE_DATA, "rucio/posix"),
        "attributes": {},
        "protocols": [
            proto("file", "localhost", 0, STORAGE_DATA + "/rucio/posix/", 1, tpc=False),
        ],
    },
    "PILOT_XRD": {
        "dir": os.path.join(STORAGE_DATA, "rucio/xrd"),
        "attributes": {},
        "protocols": [
            proto("root", HOST, XRD_PORT, "//rucio/xrd/", 1),   # root://h:p//abs/path
            proto("davs", HOST, XRD_PORT, "/rucio/xrd/", 2),
            proto("https", HOST, XRD_PORT, "/rucio/xrd/", 3),
            proto("file", "localhost", 0, STORAGE_DATA + "/rucio/xrd/", 4, tpc=False),
        ],
    },
    "PILOT_DAVS": {
        "dir": os.path.join(STORAGE_DATA, "rucio/davs"),
        "attributes": {"verify_checksum": False},
        "protocols": [
            proto("davs", HOST, NGINX_HTTPS_PORT, "/rucio/davs/", 1),
        ],
    },
}

COMPARED = ("prefix", "impl", "domains")


def same_protocol(have, want):
    for key in COMPARED:
        if have.get(key) != want[key]:
            return False
    return True


def ensure_rse(client, name, spec):
    try:
        info = client.get_rse(name)
        created = False
    except RSENotFound:
        client.add_rse(name, deterministic=True, volatile=False, rse_type="DISK",
                       city="loopback", country_name="XX")
        info = client.get_rse(name)
        created = True

    attrs = {"lfn2pfn_algorithm": "hash", "pilot_test": True}
    attrs.update(spec["attributes"])
    current = client.list_rse_attributes(name)
    for key, value in attrs.items():
        if current.get(key) != value:
            client.add_rse_attribute(name, key, value)

    existing = {(p["scheme"], p["hostname"], int(p["port"])): p for p in info.get("protocols", [])}
    wanted = {(p["scheme"], p["hostname"], p["port"]) for p in spec["protocols"]}
    changed = []
    for key, have in existing.items():
        if key not in wanted:
            client.delete_protocols(name, key[0], hostname=key[1], port=key[2])
            changed.append("-%s://%s:%s" % key)
    for want in spec["protocols"]:
        key = (want["scheme"], want["hostname"], want["port"])
        have = existing.get(key)
        if have is not None and same_protocol(have, want):
            continue
        if have is not None:
            client.delete_protocols(name, key[0], hostname=key[1], port=key[2])
        client.add_protocol(name, dict(want))
        changed.append("+%s://%s:%s" % key)

    client.set_local_account_limit(ACCOUNT, name, -1)

    os.makedirs(spec["dir"], exist_ok=True)
    try:
        import pwd
        xrd = pwd.getpwnam("xrootd")
        for path in (os.path.join(STORAGE_DATA, "rucio"), spec["dir"]):
            os.chown(path, xrd.pw_uid, xrd.pw_gid)
    except (KeyError, PermissionError):
        pass
    print("rucio-bootstrap: RSE %-12s %s%s" % (name, "created" if created else "ok",
                                               (" protocols " + " ".join(changed)) if changed else ""))


def main():
    client = Client()
    who = client.whoami()
    if who.get("account") != ACCOUNT:
        print("rucio-bootstrap: unexpected account %r" % who.get("account"), file=sys.stderr)
        return 1
    for name, spec in RSES.items():
        ensure_rse(client, name, spec)
    have = set(client.list_scopes())
    for scope in SCOPES:
        if scope not in have:
            try:
                client.add_scope(ACCOUNT, scope)
            except Duplicate:
                pass
    print("rucio-bootstrap: scopes %s" % " ".join(SCOPES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
