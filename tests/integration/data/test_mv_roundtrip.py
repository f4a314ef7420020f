"""Real stage-in and stage-out through the Data API with the mv copytool, plus Harvester's call shapes."""

import logging
import os

import pytest
from sitetools import adler

from pilot.api import data
from pilot.api.data import StageInClient, StageOutClient
from pilot.api.es_data import StageInESClient, StageOutESClient
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.info import FileSpec, InfoService, infosys


def service(site):
    return InfoService().init(site.queue)


def test_stagein_and_stageout_roundtrip(local_site):
    info = service(local_site)
    info.check_queue()
    payload = os.urandom(300 * 1024)
    local_site.put("LOCAL_DATADISK", "mc_test.sub", "EVNT.1._000001.pool.root.1", payload)
    files = [FileSpec(filetype="input", scope="mc_test.sub", lfn="EVNT.1._000001.pool.root.1",
                      checksum=f"ad:{adler(payload)}", filesize=len(payload), guid="AAAA-BBBB")]
    StageInClient(info).transfer(files, activity="pr", workdir=str(local_site.work), job=None)
    path = local_site.work / "EVNT.1._000001.pool.root.1"
    assert files[0].status == "transferred" and path.read_bytes() == payload

    (local_site.work / "HITS.pool.root").write_bytes(payload[::-1])
    (local_site.work / "job.log.tgz").write_bytes(b"log")
    outs = [FileSpec(filetype="output", scope="mc_test", lfn="HITS.pool.root")]
    logs = [FileSpec(filetype="log", scope="mc_test", lfn="job.log.tgz")]
    client = StageOutClient(info)
    client.transfer(outs, activity=["pw", "w"], workdir=str(local_site.work))
    client.transfer(logs, activity=["pl", "pw", "w"], workdir=str(local_site.work))
    assert outs[0].ddmendpoint == "LOCAL_DATADISK" and logs[0].ddmendpoint == "LOCAL_SCRATCH"
    stored = outs[0].surl[len("file://"):]
    assert open(stored, "rb").read() == payload[::-1] and outs[0].checksum["adler32"] == adler(payload[::-1])
    assert stored.startswith(str(local_site.storage["LOCAL_DATADISK"]) + "/mc_test/")
    assert logs[0].surl.startswith(f"file://{local_site.storage['LOCAL_SCRATCH']}/mc_test/")


@pytest.mark.parametrize("checksum,code", [("ad:00000001", ErrorCodes.GETADMISMATCH),
                                           ("md:00000000000000000000000000000000", ErrorCodes.GETMD5MISMATCH)])
def test_bad_checksum(local_site, checksum, code):
    local_site.put("LOCAL_DATADISK", "tests", "f.dat", b"data")
    f = FileSpec(filetype="input", scope="tests", lfn="f.dat", checksum=checksum, workdir=str(local_site.work))
    with pytest.raises(PilotException) as err:
        StageInClient(service(local_site)).transfer([f], activity="pr")
    assert err.value.get_error_code() == code and f.status_code == code
    assert not (local_site.work / "f.dat").exists()


def test_missing_input_is_1331_and_missing_output_is_1103(local_site):
    f = FileSpec(filetype="input", scope="tests", lfn="absent.dat", workdir=str(local_site.work))
    with pytest.raises(PilotException) as err:
        StageInClient(service(local_site)).transfer([f], activity="pr")
    assert err.value.get_error_code() == ErrorCodes.MISSINGINPUTFILE
    g = FileSpec(filetype="output", scope="tests", lfn="absent.out", workdir=str(local_site.work))
    with pytest.raises(PilotException) as err:
        StageOutClient(service(local_site)).transfer([g], activity="pw")
    assert err.value.get_error_code() == ErrorCodes.NOSUCHFILE


def test_unknown_tool_is_1323(local_site):
    f = FileSpec(filetype="input", scope="tests", lfn="x.dat", workdir=str(local_site.work))
    with pytest.raises(PilotException) as err:
        StageInClient(service(local_site), acopytools={"default": ["teleport"]}).transfer([f])
    assert err.value.get_error_code() == ErrorCodes.UNKNOWNCOPYTOOL


def test_lfn_leaving_the_work_dir_is_rejected(local_site):
    (local_site.tmp / "secret").write_text("s")
    f = FileSpec(filetype="input", scope="tests", lfn="../secret", workdir=str(local_site.work))
    with pytest.raises(PilotException):
        StageInClient(service(local_site)).transfer([f], activity="pr", input_dir=str(local_site.tmp))
    g = FileSpec(filetype="output", scope="tests", lfn="../../escape", workdir=str(local_site.work))
    with pytest.raises(PilotException):
        StageOutClient(service(local_site)).transfer([g], activity="pw", output_dir=str(local_site.tmp / "o"))
    assert not (local_site.tmp / "escape").exists()


def test_direct_access_lan_hands_turl(local_site):
    class Job:
        transfertype, accessmode, is_analysis, produserid, jobid, taskid = "direct", "", False, "", "1", "1"
    local_site.put("LOCAL_DATADISK", "tests", "d.dat", b"d")
    f = FileSpec(filetype="input", scope="tests", lfn="d.dat", workdir=str(local_site.work))
    StageInClient(service(local_site)).transfer([f], activity="pr", job=Job())
    assert f.status == "remote_io" and os.path.exists(f.turl[len("file://"):])


# ---------------------------------------------------------------- exactly as Harvester calls
def test_harvester_current_shape(local_site):
    local_site.put("LOCAL_DATADISK", "data_test", "h1.dat", b"h1")
    local_site.put("LOCAL_DATADISK", "data_test", "h2.dat", b"h2")
    dest = local_site.tmp / "harvester_base"
    dest.mkdir()
    tmp_log = logging.getLogger("harvester.preparator")

    infosys.init(local_site.queue, infosys.confinfo, infosys.extinfo)
    infosys.queuedata.direct_access_lan = False
    infosys.queuedata.direct_access_wan = False
    data_client = data.StageInClient(infosys, acopytools={'default': ['mv']}, logger=tmp_log)
    files = [FileSpec(type='input', scope='data_test', lfn=name, ddmendpoint='LOCAL_DATADISK', dataset='ds',
                      guid='g-' + name, workdir=str(dest)) for name in ("h1.dat", "h2.dat")]
    result = data_client.transfer(files, use_vp=False)
    assert [(f.lfn, f.status_code) for f in result] == [("h1.dat", 0), ("h2.dat", 0)]
    files = [FileSpec(type='input', scope='data_test', lfn="h1.dat", ddmendpoint='LOCAL_DATADISK', dataset='ds',
                      guid='g', workdir=str(dest / "again"))]
    os.makedirs(dest / "again")
    result = data_client.transfer(files)
    assert result[0].status_code == 0 and (dest / "again" / "h1.dat").read_bytes() == b"h1"


def test_harvester_failure_is_caught_and_status_code_set(local_site):
    infosys.init(local_site.queue, infosys.confinfo, infosys.extinfo)
    data_client = data.StageInClient(infosys, acopytools={'default': ['mv']}, logger=logging.getLogger("h"))
    files = [FileSpec(type='input', scope='data_test', lfn='gone.dat', ddmendpoint='LOCAL_DATADISK',
                      dataset='ds', guid='g', workdir=str(local_site.work))]
    try:
        data_client.transfer(files, use_vp=False)
    except Exception as exc:  # Harvester catches everything
        assert isinstance(exc, PilotException)
    assert files[0].status_code == ErrorCodes.MISSINGINPUTFILE and files[0].lfn == "gone.dat"


def test_legacy_site_shape_dicts(local_site):
    inbox = local_site.tmp / "inbox"
    inbox.mkdir()
    (inbox / "old.dat").write_bytes(b"old")
    dest = local_site.tmp / "legacy"
    dest.mkdir()
    client = data.StageInClient(site="LOCAL", acopytools="mv")
    items = [{"scope": "tests", "name": "old.dat", "destination": str(dest)},
             {"scope": "tests", "name": "old.dat", "destination": str(dest / "missing")}]
    out = client.transfer(items, input_dir=str(inbox))
    assert out is items and items[0]["errno"] == 0 and items[0]["status"] == "done"
    assert (dest / "old.dat").read_bytes() == b"old"
    assert items[1]["errno"] == 1 and items[1]["status"] == "failed"

    (local_site.work / "up.dat").write_text("up")
    up = [{"scope": "tests", "file": str(local_site.work / "up.dat"), "rse": "LOCAL_DATADISK", "no_register": True},
          {"scope": "tests", "file": str(local_site.work / "nope.dat"), "rse": "LOCAL_DATADISK"}]
    out = data.StageOutClient(site="LOCAL", acopytools="mv").transfer(up, output_dir=str(local_site.tmp / "outbox"))
    assert up[0]["errno"] == 0 and (local_site.tmp / "outbox" / "up.dat").read_text() == "up"
    assert up[1]["errno"] == 1


def test_es_clients(local_site):
    info = service(local_site)
    local_site.put("LOCAL_DATADISK", "tests", "es.dat", b"es")
    f = FileSpec(filetype="input", scope="tests", lfn="es.dat", prodDBlockToken="10/1000",
                 workdir=str(local_site.work))
    StageInESClient(info, acopytools="mv").transfer([f])
    assert f.ddmendpoint == "LOCAL_DATADISK" and f.status == "transferred"
    (local_site.work / "es.out").write_text("o")
    g = FileSpec(filetype="output", scope="tests", lfn="es.out", ddmendpoint="LOCAL_SCRATCH",
                 workdir=str(local_site.work))
    StageOutESClient(info, acopytools={"es_events": ["mv"]}).transfer([g])
    assert g.status == "transferred"
