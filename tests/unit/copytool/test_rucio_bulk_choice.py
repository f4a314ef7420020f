"""Which replicas the rucio tool fetches with one xrdcp: root:// on storages of rucio's XRootD impl only."""

import types

from pilot.copytool import rucio
from pilot.copytool.options import CopytoolOptions
from pilot.info import FileSpec


class FakeClient:
    def __init__(self, impls):
        self.impls = impls
        self.asked = []

    def get_protocols(self, rse, scheme=None):
        self.asked.append(rse)
        if rse not in self.impls:
            raise RuntimeError("RSE not found")
        return {"protocols": [{"scheme": s, "impl": i} for s, i in self.impls[rse]]}


def test_xrootd_storages():
    client = FakeClient({"XRD": [("davs", "rucio.rse.protocols.gfal.Default"), ("root", rucio.XROOTD_IMPL)],
                         "GFAL": [("root", "rucio.rse.protocols.gfal.Default")]})
    assert rucio.xrootd_storages(client, {"XRD", "GFAL", "GONE", ""}) == {"XRD"}


def test_bulk_xrdcp_only_for_xrootd_root_replicas_and_never_with_a_token(monkeypatch):
    calls = []
    monkeypatch.setattr("pilot.copytool.xrdcp.copy_in_bulk", lambda files, **kw: calls.append(
        ([f.lfn for f in files], kw.get("xrootd_env"))) or files)
    client = FakeClient({"XRD": [("root", rucio.XROOTD_IMPL)], "OTHER": [("root", "x.Default")]})
    files = [FileSpec(type="input", lfn=f"f{i}", ddmendpoint="XRD", turl=f"root://h//p/f{i}") for i in range(3)]
    files += [FileSpec(type="input", lfn="o", ddmendpoint="OTHER", turl="root://h//p/o"),
              FileSpec(type="input", lfn="d", ddmendpoint="XRD", turl="davs://h/p/d")]
    clients = types.SimpleNamespace(download=types.SimpleNamespace(client=client, auth_token=None))
    rucio._bulk_xrdcp(files, clients, CopytoolOptions())
    assert calls == [(["f0", "f1", "f2"], {"XrdSecPROTOCOL": "gsi"})]
    calls.clear()
    clients.download.auth_token = "a.b.c"
    rucio._bulk_xrdcp(files, clients, CopytoolOptions())
    assert calls == []
