"""Inputs that the job places on a deterministic LAN storage are read without a Rucio lookup;
Rucio is asked for the others, and for those whose copy failed."""

import pytest
from apitools import ALIASES, FAST, adler

from pilot.api import replicas
from pilot.api.data import StageInClient
from pilot.copytool.common import deterministic_path
from pilot.info import FileSpec


class FakeRucio:
    """list_replicas answering from ``known``: {(scope, name): {rse: pfn}}."""

    def __init__(self, known=None):
        self.known = known or {}
        self.asked = []

    def list_replicas(self, dids, **kw):
        self.asked.append(sorted(d["name"] for d in dids))
        for did in dids:
            rses = self.known.get((did["scope"], did["name"]))
            if rses:
                yield {"scope": did["scope"], "name": did["name"], "rses": {r: [p] for r, p in rses.items()},
                       "pfns": {p: {"type": "DISK"} for p in rses.values()}}


@pytest.fixture
def tool(fake_tools):
    fake_tools["fake"].require_replicas = True
    return fake_tools["fake"]


def infile(site, lfn, data=b"x" * 50, store="DISK", put=True, **kw):
    if put:
        site.put(store, "tests", lfn, data)
    kw.setdefault("checksum", {"adler32": adler(data)})
    return FileSpec(type="input", scope="tests", lfn=lfn, filesize=len(data), ddmendpoint=store,
                    workdir=str(site.work), **kw)


def stagein(site, files, rucio):
    client = StageInClient(site.info, acopytools="fake", copytool_aliases=ALIASES, retry_policy=FAST,
                           rucio_client=rucio)
    return client.transfer(files, raise_exception=False)


def test_lan_deterministic_inputs_need_no_lookup(site, tool):
    rucio = FakeRucio()
    files = [infile(site, f"f{n}.dat") for n in range(3)]
    stagein(site, files, rucio)
    assert rucio.asked == [] and all(f.status == "transferred" for f in files)
    assert all(f.replica_source == "storage" and f.ddmendpoint == "DISK" for f in files)
    assert all(deterministic_path("tests", f.lfn) in f.turl for f in files)


def test_only_the_other_inputs_are_looked_up(site, tool):
    other = site.put("DISK2", "tests", "wan.dat", b"y" * 50)
    nosum_path = site.stores["DISK"] / deterministic_path("tests", "nosum.dat")
    rucio = FakeRucio({("tests", "wan.dat"): {"DISK2": f"file://{other}"},
                       ("tests", "nosum.dat"): {"DISK": f"file://{nosum_path}"}})
    lan = infile(site, "lan.dat")
    wan = infile(site, "wan.dat", data=b"y" * 50, store="DISK2", put=False)  # DISK2 is not a LAN storage
    nosum = infile(site, "nosum.dat", checksum={})  # no adler32 given: must come from Rucio
    stagein(site, [lan, wan, nosum], rucio)
    assert rucio.asked == [["nosum.dat", "wan.dat"]]
    assert lan.replica_source == "storage" and wan.replica_source == "rucio" and wan.status == "transferred"


def test_a_failed_copy_asks_rucio_for_other_replicas(site, tool):
    data = b"z" * 50
    good = site.put("DISK2", "tests", "moved.dat", data)
    rucio = FakeRucio({("tests", "moved.dat"): {"DISK2": f"file://{good}"}})
    f = infile(site, "moved.dat", data=data, put=False)  # not on the job's storage any more
    tool.script["moved.dat"] = ["No such file or directory", "ok"]
    stagein(site, [f], rucio)
    assert rucio.asked == [["moved.dat"]]
    assert f.status == "transferred" and f.ddmendpoint == "DISK2" and f.replica_source == "rucio"
    assert (site.work / "moved.dat").read_bytes() == data


def test_a_corrupt_copy_on_the_job_storage_also_falls_back(site, tool):
    data = b"good" * 10
    site.put("DISK", "tests", "c.dat", b"bad!" * 10)
    good = site.put("DISK2", "tests", "c.dat", data)
    rucio = FakeRucio({("tests", "c.dat"): {"DISK2": f"file://{good}"}})
    f = infile(site, "c.dat", data=data, put=False)
    stagein(site, [f], rucio)
    assert f.status == "transferred" and f.ddmendpoint == "DISK2"


def test_always_looks_up_every_input(site, tool, monkeypatch):
    monkeypatch.setattr(replicas, "lookup_mode", lambda: "always")
    path = site.stores["DISK"] / deterministic_path("tests", "a.dat")
    rucio = FakeRucio({("tests", "a.dat"): {"DISK": f"file://{path}"}})
    f = infile(site, "a.dat")
    stagein(site, [f], rucio)
    assert rucio.asked == [["a.dat"]] and f.replica_source == "rucio" and f.status == "transferred"


def test_missing_everywhere_keeps_the_missing_code(site, tool):
    f = infile(site, "gone.dat", put=False)
    tool.script["gone.dat"] = ["No such file or directory"]
    files = stagein(site, [f], FakeRucio())
    assert files[0].status == "failed" and files[0].status_code in (1103, 1331)


def test_needs_no_lookup_rules(site):
    ddmconf = site.info.resolve_storage_data()
    queue = site.info.queuedata
    ok = FileSpec(type="input", scope="s", lfn="a", filesize=1, checksum={"adler32": "1"}, ddmendpoint="DISK")
    assert replicas.needs_no_lookup(ok, ddmconf, queue)
    for change in ({"ddmendpoint": "DISK2"}, {"ddmendpoint": ""}, {"filesize": 0}, {"checksum": {"md5": "x"}},
                   {"ddmendpoint": "UNKNOWN"}):
        spec = FileSpec(**{**dict(type="input", scope="s", lfn="a", filesize=1, checksum={"adler32": "1"},
                                  ddmendpoint="DISK"), **change})
        assert not replicas.needs_no_lookup(spec, ddmconf, queue), change
    ddmconf["DISK"].is_deterministic = False
    assert not replicas.needs_no_lookup(ok, ddmconf, queue)


def test_lookup_mode_reads_the_config():
    from pilot.util.config import config

    assert replicas.lookup_mode() == "auto"
    try:
        config.set("Rucio", "replica_lookup", "ALWAYS")
        assert replicas.lookup_mode() == "always"
        config.set("Rucio", "replica_lookup", "bogus")
        assert replicas.lookup_mode() == "auto"
    finally:
        config.clear_overrides()
