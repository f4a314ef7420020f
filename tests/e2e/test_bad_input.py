"""Malformed job definitions: a precise code reaches the server; nothing runs or is written outside the job dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pilot.common.errorcodes import ErrorCodes as E
from pilot.devserver.samples import sample_job

CANARY = "/tmp/pilot-bad-input-canary"

CASES = {
    "unequal_lists": ({"GUID": "a,b,c"}, E.NOTSAMELENGTH),
    "no_transformation": ({"transformation": ""}, E.NOTDEFINED),
    "wrong_type": ({"coreCount": "eight"}, E.CONVERSIONFAILURE),
    "enormous_number": ({"attemptNr": "9" * 60}, E.CONVERSIONFAILURE),
    "enormous_size": ({"fsize": "9" * 30}, E.CONVERSIONFAILURE),
    "lfn_dotdot": ({"outFiles": "../../escaped.txt,{log}"}, E.BADOUTPUTFILENAME),
    "lfn_absolute": ({"outFiles": f"{CANARY},{{log}}"}, E.BADOUTPUTFILENAME),
    "lfn_shell": ({"outFiles": f"x;touch {CANARY},{{log}}"}, E.BADOUTPUTFILENAME),
    "lfn_too_long": ({"outFiles": "o" * 300 + ",{log}"}, E.LFNTOOLONG),
    "input_lfn_dotdot": ({"inFiles": "../../../etc/passwd"}, E.STAGEINFAILED),
    "scope_dotdot": ({"scopeOut": "../../x"}, E.BADOUTPUTFILENAME),
    "nul_byte": ({"jobPars": "-c 'echo hi'\x00; touch " + CANARY}, E.CONVERSIONFAILURE),
    "not_utf8": ({"jobPars": "-c 'echo \udcff'"}, E.CONVERSIONFAILURE),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_definition(name, devserver, start_pilot, tmp_path):
    if os.path.exists(CANARY):
        os.unlink(CANARY)
    overrides, code = CASES[name]
    job = sample_job(devserver.storage_dir)
    job.update({k: v.replace("{log}", job["logFile"]) for k, v in overrides.items()})
    pandaid = devserver.submit(job)
    before = {p for p in Path(devserver.storage_dir).rglob("*")}
    run = start_pilot()
    run.wait(60)
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed", run.log_text()[-2000:]
    assert int(final["pilotErrorCode"]) == code, final["pilotErrorDiag"]
    assert final["pilotErrorDiag"]
    assert not os.path.exists(CANARY)
    # the payload never ran, and nothing new appeared on storage
    jobdir = run.main_dir() / f"PanDA_Pilot-{pandaid}"
    assert not (jobdir / "payload.stdout").exists()
    assert {p for p in Path(devserver.storage_dir).rglob("*")} == before
    assert not (tmp_path / "escaped.txt").exists()
