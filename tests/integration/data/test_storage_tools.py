"""Copytools against the real servers of ci/storage (XRootD 1094, nginx WebDAV 18443, Rucio 18580)."""

import os
import time

import pytest
from sitetools import adler

from pilot.api.data import StageInClient, StageOutClient
from pilot.api.staging import RetryPolicy
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.info import FileSpec

pytestmark = pytest.mark.storage
FAST = RetryPolicy(attempts=2, base=0.05, cap=0.2)


def stagein(site, tool, files, **kw):
    client = StageInClient(site.info, acopytools={"pr": [tool]}, retry_policy=FAST)
    return client.transfer(files, activity="pr", workdir=str(site.work), **kw)


def stageout(site, tool, files, **kw):
    client = StageOutClient(site.info, acopytools={"pw": [tool]}, retry_policy=FAST)
    return client.transfer(files, activity="pw", workdir=str(site.work), **kw)


def infile(site, src, **kw):
    return FileSpec(type="input", scope=src.scope, lfn=src.lfn, checksum={"adler32": adler(src.data)},
                    filesize=len(src.data), **kw)


def outfile(site, data, lfn=None, **kw):
    lfn = lfn or f"h4out-{site.tag}-{os.urandom(3).hex()}.dat"
    (site.work / lfn).write_bytes(data)
    return FileSpec(filetype="output", scope="tests", lfn=lfn, **kw)


@pytest.mark.parametrize("tool", ["xrdcp", "gfal", "rucio"])
def test_stagein_from_rucio_replica(real_site, tool):
    src = real_site.upload(os.urandom(150_000))
    f = infile(real_site, src)
    stagein(real_site, tool, [f])
    assert f.status == "transferred" and f.status_code == 0 and f.ddmendpoint == "PILOT_XRD"
    assert (real_site.work / src.lfn).read_bytes() == src.data


@pytest.mark.parametrize("tool,schemes,prefix", [("xrdcp", None, "root://"), ("gfal", ["davs"], "davs://"),
                                                 ("gfal", ["root"], "root://"), ("rucio", None, "")])
def test_stageout_and_back(real_site, tool, schemes, prefix):
    if schemes:
        real_site.info.queuedata.acopytools_schemas = {tool: schemes}
    data = os.urandom(200_000)
    f = outfile(real_site, data, ddmendpoint="PILOT_XRD")
    stageout(real_site, tool, [f], no_register=False)
    assert f.status == "transferred" and f.checksum["adler32"] == adler(data)
    assert f.surl.startswith(prefix) and "/rucio/xrd/tests/" in f.surl
    with open(real_site.disk_path("PILOT_XRD", "tests", f.lfn), "rb") as handle:
        assert handle.read() == data
    os.unlink(real_site.work / f.lfn)
    back = FileSpec(type="input", scope="tests", lfn=f.lfn, checksum={"adler32": adler(data)}, filesize=len(data))
    stagein(real_site, tool, [back])
    assert (real_site.work / f.lfn).read_bytes() == data


def test_corrupted_replica_retried_from_good_replica(real_site):
    data = os.urandom(50_000)
    src = real_site.upload(data, rse="PILOT_XRD")
    real_site.upload(data, rse="PILOT_POSIX", name=src.lfn)
    with open(real_site.disk_path("PILOT_XRD", "tests", src.lfn), "r+b") as handle:
        handle.write(b"CORRUPT")  # same size, wrong content
    f = infile(real_site, src)
    stagein(real_site, "gfal", [f])
    assert f.status == "transferred" and f.ddmendpoint == "PILOT_POSIX"
    assert (real_site.work / src.lfn).read_bytes() == data


def test_no_good_replica_left_is_1171(real_site):
    data = os.urandom(50_000)
    src = real_site.upload(data, rse="PILOT_XRD")
    with open(real_site.disk_path("PILOT_XRD", "tests", src.lfn), "r+b") as handle:
        handle.write(b"CORRUPT")
    f = infile(real_site, src)
    with pytest.raises(PilotException) as err:
        stagein(real_site, "xrdcp", [f])
    assert err.value.get_error_code() == ErrorCodes.GETADMISMATCH and f.status_code == ErrorCodes.GETADMISMATCH
    assert not (real_site.work / src.lfn).exists()


@pytest.mark.parametrize("tool", ["xrdcp", "gfal", "rucio"])
def test_missing_file_is_1331_without_retry(real_site, tool):
    f = FileSpec(type="input", scope="tests", lfn=f"h4-missing-{real_site.tag}.dat")
    start = time.monotonic()
    with pytest.raises(PilotException) as err:
        stagein(real_site, tool, [f])
    assert err.value.get_error_code() == ErrorCodes.MISSINGINPUTFILE
    assert time.monotonic() - start < 30


def test_stopped_server_is_service_error_then_alternative_storage(real_site):
    down = {"name": "PILOT_DOWN", "is_deterministic": True,
            "arprotocols": {"write_lan": [{"endpoint": "root://127.0.0.1:1", "path": "//down/", "id": 9}]}}
    from pilot.info.storagedata import StorageData
    real_site.info.storages_info["PILOT_DOWN"] = StorageData.from_dict(down)
    f = outfile(real_site, b"x" * 1000, ddmendpoint="PILOT_DOWN")
    with pytest.raises(PilotException) as err:
        stageout(real_site, "xrdcp", [f])
    assert err.value.get_error_code() == ErrorCodes.SERVICENOTAVAILABLE
    g = outfile(real_site, b"y" * 1000, ddmendpoint="PILOT_DOWN", ddmendpoint_alt="PILOT_XRD")
    stageout(real_site, "xrdcp", [g])
    assert g.status == "transferred" and g.is_altstaged and "/rucio/xrd/" in g.surl


def test_nginx_without_checksums_is_1242(real_site):
    f = outfile(real_site, b"z" * 1000, ddmendpoint="PILOT_DAVS")
    with pytest.raises(PilotException) as err:
        stageout(real_site, "gfal", [f])
    assert err.value.get_error_code() == ErrorCodes.CHKSUMNOTSUP


@pytest.mark.parametrize("tool", ["xrdcp", "gfal", "rucio"])
def test_destination_already_holds_other_data(real_site, tool):
    """Storage is never overwritten by a stage-out: another file at the name is 1221 and stays as it was."""
    lfn = f"h4-exists-{real_site.tag}-{tool}.dat"
    stageout(real_site, tool, [outfile(real_site, b"first version", lfn=lfn, ddmendpoint="PILOT_XRD")])
    f = outfile(real_site, b"second version!", lfn=lfn, ddmendpoint="PILOT_XRD")
    with pytest.raises(PilotException) as err:
        stageout(real_site, tool, [f])
    assert err.value.get_error_code() == ErrorCodes.FILEEXISTS and f.status_code == ErrorCodes.FILEEXISTS
    with open(real_site.disk_path("PILOT_XRD", "tests", lfn), "rb") as handle:
        assert handle.read() == b"first version"


@pytest.mark.parametrize("tool", ["xrdcp", "gfal", "rucio"])
def test_destination_already_holds_the_same_file(real_site, tool):
    """The same bytes already at the name (a retried or recovered upload) are a success, without a copy."""
    lfn = f"h4-same-{real_site.tag}-{tool}.dat"
    stageout(real_site, tool, [outfile(real_site, b"one version", lfn=lfn, ddmendpoint="PILOT_XRD")])
    path = real_site.disk_path("PILOT_XRD", "tests", lfn)
    before = os.stat(path)
    f = outfile(real_site, b"one version", lfn=lfn, ddmendpoint="PILOT_XRD")
    stageout(real_site, tool, [f])
    assert f.status == "transferred" and f.remote_checksum["adler32"] == f.checksum["adler32"]
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.parametrize("tool", ["xrdcp", "gfal", "rucio"])
def test_lfn_leaving_work_dir_rejected(real_site, tool):
    f = FileSpec(type="input", scope="tests", lfn="../../etc/passwd-h4")
    with pytest.raises(PilotException) as err:
        stagein(real_site, tool, [f])
    assert err.value.get_error_code() in (ErrorCodes.BADOUTPUTFILENAME, ErrorCodes.STAGEINFAILED)
    assert not os.path.exists(real_site.tmp.parent / "etc")


@pytest.mark.parametrize("tool", ["xrdcp", "rucio", "gfal"])
def test_bulk_stagein_with_a_corrupt_and_a_missing_replica(real_site, tool, caplog):
    """Many files in one bulk call; a corrupt first replica and a file missing on disk go one by one."""
    import logging

    caplog.set_level(logging.INFO, logger="pilot.api.bulk")
    good = [real_site.upload(os.urandom(20_000 + i)) for i in range(4)]
    data = os.urandom(30_000)
    corrupt = real_site.upload(data, rse="PILOT_XRD")
    real_site.upload(data, rse="PILOT_POSIX", name=corrupt.lfn)
    with open(real_site.disk_path("PILOT_XRD", "tests", corrupt.lfn), "r+b") as handle:
        handle.write(b"CORRUPT")
    gone = real_site.upload(os.urandom(1000))
    os.unlink(real_site.disk_path("PILOT_XRD", "tests", gone.lfn))
    files = [infile(real_site, src) for src in good + [corrupt, gone]]
    with pytest.raises(PilotException) as err:
        stagein(real_site, tool, files)
    assert err.value.get_error_code() in (ErrorCodes.GETADMISMATCH, ErrorCodes.MISSINGINPUTFILE)
    assert "bulk stage-in of 6 file(s)" in caplog.text
    for src, f in zip(good, files):
        assert f.status == "transferred" and (real_site.work / src.lfn).read_bytes() == src.data
    if tool in ("rucio", "gfal"):  # these also read file:// replicas: the good copy on PILOT_POSIX
        assert files[4].status == "transferred" and files[4].ddmendpoint == "PILOT_POSIX"
        assert (real_site.work / corrupt.lfn).read_bytes() == data
    else:  # xrdcp reads root:// only: the one replica is corrupt (and was not read a second time)
        assert files[4].status_code == ErrorCodes.GETADMISMATCH and not (real_site.work / corrupt.lfn).exists()
    assert files[5].status == "failed" and files[5].status_code == ErrorCodes.MISSINGINPUTFILE
    assert not (real_site.work / gone.lfn).exists()


class NoRucio:
    """A Rucio client that must not be asked: the inputs name their storage."""

    def list_replicas(self, *args, **kwargs):
        raise AssertionError("list_replicas was called")


@pytest.mark.parametrize("tool", ["xrdcp", "gfal", "rucio"])
def test_inputs_on_the_jobs_lan_storage_need_no_lookup(real_site, tool):
    """ddmEndPointIn = PILOT_XRD (deterministic, the queue's LAN storage), size and adler32 given: no Rucio call."""
    sources = [real_site.upload(os.urandom(10_000 + i)) for i in range(6)]
    files = [infile(real_site, src, ddmendpoint="PILOT_XRD") for src in sources]
    client = StageInClient(real_site.info, acopytools={"pr": [tool]}, retry_policy=FAST, rucio_client=NoRucio())
    client.transfer(files, activity="pr", workdir=str(real_site.work))
    for src, f in zip(sources, files):
        assert f.status == "transferred" and f.replica_source == "storage" and f.ddmendpoint == "PILOT_XRD"
        assert (real_site.work / src.lfn).read_bytes() == src.data


def test_a_corrupt_copy_on_the_jobs_storage_is_replaced_through_rucio(real_site):
    """The copy on the job's storage is bad: Rucio is asked, and the good replica elsewhere is read."""
    data = os.urandom(25_000)
    src = real_site.upload(data, rse="PILOT_XRD")
    real_site.upload(data, rse="PILOT_POSIX", name=src.lfn)
    with open(real_site.disk_path("PILOT_XRD", "tests", src.lfn), "r+b") as handle:
        handle.write(b"CORRUPT")
    f = infile(real_site, src, ddmendpoint="PILOT_XRD")
    stagein(real_site, "rucio", [f])
    assert f.status == "transferred" and f.replica_source == "rucio" and f.ddmendpoint == "PILOT_POSIX"
    assert (real_site.work / src.lfn).read_bytes() == data


def test_rucio_bulk_fetches_root_replicas_with_one_xrdcp(real_site, caplog):
    """PILOT_XRD's root protocol is rucio-clients' XRootD implementation: one xrdcp for all files."""
    import logging

    caplog.set_level(logging.INFO, logger="pilot.copytool.rucio")
    sources = [real_site.upload(os.urandom(5_000 + i)) for i in range(8)]
    files = [infile(real_site, src, ddmendpoint="PILOT_XRD") for src in sources]
    stagein(real_site, "rucio", files)
    assert "rucio bulk: 8 of 8 root:// file(s) fetched with one xrdcp" in caplog.text
    for src, f in zip(sources, files):
        assert f.status == "transferred" and (real_site.work / src.lfn).read_bytes() == src.data


def test_many_inputs_as_harvester_gives_them_one_lookup_same_replicas(real_site):
    """Harvester's shape (no size, no checksum, the rucio tool): ten inputs on two storages are looked up once
    without schemes, get the replicas a lookup with the tool's schemes gives, and arrive verified."""
    from rucio.client import Client

    from pilot.api import replicas
    from pilot.copytool import rucio as rucio_tool

    asked = []

    class Counting(Client):
        def list_replicas(self, dids, *args, **kwargs):
            asked.append(kwargs.get("schemes"))
            return super().list_replicas(dids, *args, **kwargs)

    sources = [real_site.upload(os.urandom(3_000 + i), rse="PILOT_XRD" if i % 2 else "PILOT_DAVS")
               for i in range(replicas.TWO_STEP_MIN_FILES)]
    files = [FileSpec(type="input", scope=src.scope, lfn=src.lfn, ddmendpoint="PILOT_XRD") for src in sources]
    rucio = Counting()
    client = StageInClient(real_site.info, acopytools={"default": ["rucio"]}, default_copytools="rucio",
                           retry_policy=FAST, rucio_client=rucio)
    client.transfer(files, use_vp=False, workdir=str(real_site.work))
    assert asked == [None]
    full = replicas._by_did(replicas.list_replicas(Client(), files, allowed_schemas=rucio_tool.allowed_schemas))
    for src, f in zip(sources, files):
        expected = replicas.order_replicas(full[(f.scope, f.lfn)], f, client.queuedata, rucio_tool.allowed_schemas,
                                           client.direct_localinput_allowed_schemas)
        assert f.replicas == expected and f.replicas[0]["pfn"].split("://")[0] in ("root", "davs")
        assert f.status == "transferred" and f.status_code == 0 and f.checksum["adler32"] == adler(src.data)
        assert (real_site.work / src.lfn).read_bytes() == src.data
