"""An object-store RSE in the test Rucio that points at the private SeaweedFS of s3site.py.

The RSE is made once per test session through the Rucio client API (the S3 port changes every session,
so ci/storage cannot know it): non-deterministic, one ``s3`` protocol ``s3://127.0.0.1:<port>/pilot/os/``.
Its name carries the port and a random tag, so test sessions running side by side never share one; it is
deleted afterwards. Three writes per session (add_rse, add_protocol, delete_rse): the server is SQLite.
"""

from __future__ import annotations

import os
import types
import uuid

import pytest
from s3site import ACCESS_KEY, BUCKET, SECRET_KEY
from sitetools import STORAGE_ENV_DEFAULTS, require_servers

PREFIX = "/os/"  # below the bucket
DOMAINS = {"lan": {"read": 1, "write": 1, "delete": 1},
           "wan": {"read": 1, "write": 1, "delete": 1, "third_party_copy_read": 0, "third_party_copy_write": 0}}


def client_env() -> dict:
    """The storage client settings (what ci/storage/client-env.sh exports) missing from the environment."""
    return {key: value for key, value in STORAGE_ENV_DEFAULTS.items()
            if not os.environ.get(key) and os.path.exists(value)}


def os_storage(name: str, server, key_names: bool = False, storage_type: str = "OS_ES") -> dict:
    """The queue's record of the RSE (``key_names``: settings name the keys for getKeyPair)."""
    proto = {"endpoint": server.url, "path": f"/{BUCKET}{PREFIX}", "flavour": "AWS-S3", "id": 601}
    settings = {"access_key": "os-public" if key_names else ACCESS_KEY,
                "secret_key": "os-private" if key_names else SECRET_KEY, "is_secure": False}
    return {"name": name, "id": 600, "type": storage_type, "is_deterministic": False, "state": "ACTIVE",
            "arprotocols": {a: [proto] for a in ("read_lan", "write_lan", "read_wan", "write_wan")},
            "rprotocols": {"601": {**proto, "settings": settings}}}


@pytest.fixture(scope="session")
def os_rse(s3_server):
    """``SimpleNamespace(name, server, rucio, key(lfn))``: the session's object-store RSE."""
    require_servers("rucio")
    with pytest.MonkeyPatch.context() as patch:  # only while the client is made: tests set their own
        for key, value in client_env().items():
            patch.setenv(key, value)
        from rucio.client import Client

        rucio = Client()
    name = f"PILOT_OS_{s3_server.port}_{uuid.uuid4().hex[:4].upper()}"
    rucio.add_rse(name, deterministic=False, volatile=False, rse_type="DISK", city="loopback", country_name="XX")
    try:
        rucio.add_protocol(name, {"scheme": "s3", "hostname": "127.0.0.1", "port": s3_server.port,
                                  "prefix": f"/{BUCKET}{PREFIX}", "impl": "rucio.rse.protocols.gfal.NoRename",
                                  "domains": DOMAINS, "extended_attributes": None})
        yield types.SimpleNamespace(name=name, server=s3_server, rucio=rucio,
                                    key=lambda lfn: f"{PREFIX.strip('/')}/{lfn}")
    finally:
        try:
            rucio.delete_rse(name)
        except Exception as exc:  # a left-over test RSE is harmless
            print(f"could not delete the test RSE {name}: {exc}")
