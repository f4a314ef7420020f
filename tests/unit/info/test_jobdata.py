"""JobData: parsing the getJob field set, validation errors, state transitions."""

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.info.jobdata import JobData, JobPhase, lfn_problem


def definition(**extra):
    job = {
        "PandaID": "1234", "taskID": "77", "attemptNr": "2", "transformation": "/bin/bash",
        "jobPars": "-c 'echo hi'", "coreCount": "4",
        "inFiles": "a.root,b.root", "GUID": "g1,g2", "fsize": "10,20", "checksum": "ad:0000000a,md:ff",
        "scopeIn": "mc,mc", "realDatasetsIn": "ds1,ds1", "ddmEndPointIn": "SE1,SE1", "prodDBlockToken": "NULL,local",
        "outFiles": "out.root,1234.log.tgz", "scopeOut": "mc,mc", "realDatasets": "o1,l1",
        "ddmEndPointOut": "SE2,SE2", "destinationDblock": "o1,l1",
        "logFile": "1234.log.tgz", "logGUID": "lg", "scopeLog": "logs",
    }
    job.update(extra)
    return job


def test_parse_files_and_scalars():
    job = JobData.from_definition(definition())
    assert job.jobid == "1234" and job.taskid == "77" and job.attemptnr == 2 and job.corecount == 4
    assert [f.lfn for f in job.indata] == ["a.root", "b.root"]
    assert job.indata[0].checksum == {"adler32": "0000000a"}
    assert job.indata[1].checksum == {"md5": "ff"}
    assert job.indata[1].filesize == 20 and job.indata[1].prodDBlockToken == "local"
    assert [f.lfn for f in job.outdata] == ["out.root"]
    assert [f.lfn for f in job.logdata] == ["1234.log.tgz"]
    assert job.logdata[0].guid == "lg" and job.logdata[0].scope == "logs"
    assert not job.errors


def test_unequal_lists_are_1312():
    job = JobData.from_definition(definition(GUID="g1"))
    assert job.errors.first()[0] == ErrorCodes.NOTSAMELENGTH
    assert "GUID=1" in job.errors.first()[1]


@pytest.mark.parametrize("lfn,code", [
    ("../evil", ErrorCodes.BADOUTPUTFILENAME),
    ("/etc/passwd", ErrorCodes.BADOUTPUTFILENAME),
    ("x" * 300, ErrorCodes.LFNTOOLONG),
    ("a;rm -rf ~", ErrorCodes.BADOUTPUTFILENAME),
])
def test_bad_output_names(lfn, code):
    job = JobData.from_definition(definition(outFiles=f"{lfn},1234.log.tgz"))
    assert job.errors.first()[0] == code


def test_bad_input_name_and_number():
    job = JobData.from_definition(definition(inFiles="../x,b.root"))
    assert job.errors.first()[0] == ErrorCodes.STAGEINFAILED
    job = JobData.from_definition(definition(coreCount="many"))
    assert job.errors.first()[0] == ErrorCodes.CONVERSIONFAILURE
    job = JobData.from_definition(definition(attemptNr="9" * 40))
    assert job.errors.first()[0] == ErrorCodes.CONVERSIONFAILURE


def test_missing_pandaid_raises():
    with pytest.raises(ValueError):
        JobData.from_definition({"jobPars": "x"})
    with pytest.raises(ValueError):
        JobData.from_definition({"PandaID": "../1"})


def test_transitions_and_server_state():
    job = JobData.from_definition(definition())
    assert job.state == "starting"
    job.advance(JobPhase.VALIDATED)
    job.advance(JobPhase.STAGEIN)
    job.advance(JobPhase.PAYLOAD)
    assert job.state == "running"
    with pytest.raises(ValueError):
        job.advance(JobPhase.VALIDATED)
    job.advance(JobPhase.STAGEOUT)
    job.advance(JobPhase.FINISHED)
    assert job.state == "finished" and "finished" in job.timing
    job.fail(ErrorCodes.STAGEOUTFAILED, "x")
    assert job.state == "failed"


def test_errors_are_per_job():
    a = JobData.from_definition(definition())
    b = JobData.from_definition(definition(PandaID="5"))
    a.fail(ErrorCodes.PAYLOADEXECUTIONFAILURE, "boom")
    assert not b.errors


def test_lfn_problem_accepts_normal_names():
    assert lfn_problem("EVNT.12345._000001.pool.root.1") == ""
    assert lfn_problem("a\x00b")
