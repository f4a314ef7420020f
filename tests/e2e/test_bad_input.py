"""Malformed job definitions: a precise code reaches the server; nothing runs or is written outside the job dir."""

from __future__ import annotations

import os
import tarfile
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
    "duplicate_inputs": ({key: "{dup},{dup}" for key in ("inFiles", "GUID", "fsize", "checksum", "scopeIn",
                                                         "realDatasetsIn", "prodDBlockToken", "dispatchDblock",
                                                         "ddmEndPointIn")}, E.CONVERSIONFAILURE),
    "unknown_checksum_type": ({"checksum": "sha256:6004e1a1"}, E.UNKNOWNCHECKSUMTYPE),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_definition(name, devserver, start_pilot, tmp_path):
    if os.path.exists(CANARY):
        os.unlink(CANARY)
    overrides, code = CASES[name]
    job = sample_job(devserver.storage_dir)
    job.update({k: v.replace("{log}", job["logFile"]).replace("{dup}", str(job.get(k, "")))
                for k, v in overrides.items()})
    pandaid = devserver.submit(job)
    before = {p for p in Path(devserver.storage_dir).rglob("*")}
    run = start_pilot()
    run.wait(60)
    final = devserver.wait_final(pandaid, timeout=30)["final_update"]
    assert final["state"] == "failed", run.log_text()[-2000:]
    assert int(final["pilotErrorCode"]) == code, final["pilotErrorDiag"]
    assert final["pilotErrorDiag"]
    assert not os.path.exists(CANARY)
    assert not (tmp_path / "escaped.txt").exists()
    # the payload never ran, and nothing but the job's log tarball appeared on storage
    jobdir = run.main_dir() / f"PanDA_Pilot-{pandaid}"
    assert not (jobdir / "payload.stdout").exists()
    new = {p for p in Path(devserver.storage_dir).rglob("*") if p.is_file()} - before
    if name == "unequal_lists":  # no file list can be read: not even the log's destination is known
        assert new == set()
        return
    assert [p.name for p in new] == [job["logFile"]], new
    with tarfile.open(new.pop()) as tar:  # every job gets its log, whatever moment it failed at
        assert tar.getnames()[0] == f"tarball_PandaJob_{pandaid}_DEV_QUEUE"
