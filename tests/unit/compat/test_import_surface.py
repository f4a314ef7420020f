"""The import surface that Harvester and upstream tests rely on (compat reference §1)."""

import importlib

import pytest

SURFACE = {
    "pilot.api.data": ["StageInClient", "StageOutClient", "StagingClient"],
    "pilot.api.es_data": ["StageInESClient", "StageOutESClient"],
    "pilot.info": ["infosys", "InfoService", "JobData", "FileSpec", "JobInfoProvider"],
    "pilot.info.filespec": ["FileSpec"],
    "pilot.common.errorcodes": ["ErrorCodes"],
    "pilot.common.exception": ["PilotException", "RunPayloadFailure", "StageInFailure", "StageOutFailure"],
    "pilot.util.auxiliary": ["get_error_code_translation_dictionary", "convert_to_pilot_error_code",
                             "TimeoutException"],
    "pilot.util.config": ["config"],
    "pilot.util.container": ["execute"],
    "pilot.util.timer": ["timeout", "TimedThread", "TimeoutException"],
    "pilot.control.job": ["get_fake_job", "create_job"],
    "pilot.api.analytics": ["Analytics"],
    "pilot.eventservice.communicationmanager.communicationmanager": [
        "CommunicationRequest", "CommunicationResponse", "CommunicationManager"],
    "pilot.eventservice.esprocess.esprocess": ["ESProcess"],
    "pilot.eventservice.esprocess.eshook": ["ESHook"],
    "pilot.eventservice.esprocess.esmanager": ["ESManager"],
    "pilot.eventservice.esprocess.esmessage": ["MessageThread"],
    "pilot.eventservice.workexecutor.workexecutor": ["WorkExecutor"],
}


@pytest.mark.parametrize("module,names", sorted(SURFACE.items()))
def test_names_importable(module, names):
    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{module} lacks {missing}"


def test_exception_codes():
    from pilot.common.exception import RunPayloadFailure, StageInFailure, StageOutFailure

    assert RunPayloadFailure("x").get_error_code() == 1305
    assert StageInFailure("x").get_error_code() == 1099
    assert StageOutFailure("x").get_error_code() == 1137


def test_harvester_constants_and_messages():
    from pilot.common.errorcodes import ErrorCodes

    for name, code in (("GENERALERROR", 1008), ("SETUPFAILURE", 1110), ("STAGEINFAILED", 1099),
                       ("STAGEOUTFAILED", 1137), ("PANDAKILL", 1144), ("FAILEDBYSERVER", 1236)):
        assert getattr(ErrorCodes, name) == code
        assert ErrorCodes._error_messages[code]

    class SiteCodes(ErrorCodes):  # Harvester subclasses it
        pass

    assert SiteCodes.STAGEINFAILED == 1099


def test_infosys_attributes():
    from pilot.info import infosys

    for attr in ("confinfo", "extinfo", "queuedata", "init"):
        assert hasattr(infosys, attr)


def test_get_fake_job_keywords():
    from pilot.control.job import create_job, get_fake_job

    with_input = get_fake_job(input=True)
    without = get_fake_job(inpt=False)
    assert with_input["inFiles"] and not without["inFiles"]
    job = create_job(with_input, "QUEUE")
    assert job.jobid == with_input["PandaID"] and len(job.indata) == 1 and not job.errors


def test_exit_status_table_roundtrip():
    from pilot.util.auxiliary import convert_to_pilot_error_code, get_error_code_translation_dictionary

    table = get_error_code_translation_dictionary()
    assert table[1201][0] == 143 and table[1331][0] == 77
    assert convert_to_pilot_error_code(143) == 1201


def test_analytics_methods():
    from pilot.api.analytics import Analytics

    for name in ("fit", "slope", "intersect", "chi2", "get_table", "get_fitted_data"):
        assert callable(getattr(Analytics(), name))
