"""ATLAS plug-in logic without running payloads: setup strings, job report, metrics, diagnosis, utilities."""

from __future__ import annotations

import json
import signal

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.util.jobmetrics import MAX_JOBMETRICS
from pilot.info import infosys
from pilot.info.jobdata import JobData
from pilot.info.queuedata import QueueData
from pilot.user.atlas import common, diagnose, jobmetrics, jobreport, setup


@pytest.fixture
def job(tmp_path, monkeypatch):
    monkeypatch.setattr(infosys, "queuedata", QueueData.from_dict({"nickname": "Q", "panda_resource": "Q_RES"}))
    j = JobData.from_definition({"PandaID": "9", "taskID": "3", "transformation": "Reco_tf.py", "jobPars": "--x",
                                 "swRelease": "Atlas-21.0.15", "homepackage": "AtlasOffline/21.0.15",
                                 "cmtConfig": "x86_64-centos7-gcc8-opt", "processingType": "reco",
                                 "preprocess": {"command": "prep.sh", "args": "-a"},
                                 "coprocess": {"command": "co.sh"}, "postprocess": {"command": "post.sh"}})
    j.workdir = str(tmp_path)
    return j


@pytest.fixture
def alrb(tmp_path, monkeypatch):
    root = tmp_path / "cvmfs"
    script = root / "atlas.cern.ch" / "repo" / "ATLASLocalRootBase" / "user" / "atlasLocalSetup.sh"
    script.parent.mkdir(parents=True)
    script.write_text("# empty\n")
    monkeypatch.setenv("ATLAS_SW_BASE", str(root))
    return root


def test_asetup_options():
    assert setup.asetup_options("Atlas-21.0.15", "AtlasOffline/21.0.15") == "AtlasOffline,21.0.15,notest"
    assert setup.asetup_options("Atlas-22.0.1", "Athena/22.0.1") == "Athena,22.0.1,notest"
    assert setup.asetup_options("Atlas-21.2.4", "AnalysisTransforms-AnalysisBase_21.2.4") == \
        "AnalysisBase,21.2.4,notest"
    assert setup.asetup_options("Atlas-21.0", "AnalysisTransforms") == "21.0,notest"


def test_release_setup_needs_the_cvmfs_paths(job, tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_SW_BASE", str(tmp_path / "nothing"))
    monkeypatch.delenv("VO_ATLAS_SW_DIR", raising=False)
    assert setup.setup_command(job) == ""
    monkeypatch.setenv("VO_ATLAS_SW_DIR", str(tmp_path / "missing-sw"))
    with pytest.raises(Exception) as info:
        setup.setup_command(job)
    assert info.value.code == ErrorCodes.NOSOFTWAREDIR


def test_production_setup_and_command(job, alrb, monkeypatch):
    monkeypatch.setattr(setup, "verify_setup", lambda *a, **k: None)
    line = setup.setup_command(job)
    assert line.startswith(f"export ATLAS_LOCAL_ROOT_BASE={alrb}/atlas.cern.ch/repo/ATLASLocalRootBase;")
    assert "source ${ATLAS_LOCAL_ROOT_BASE}/user/atlasLocalSetup.sh --quiet;" in line
    assert line.endswith("source $AtlasSetup/scripts/asetup.sh AtlasOffline,21.0.15,notest "
                         "--platform x86_64-centos7-gcc8-opt --makeflags='$MAKEFLAGS';")
    cmd = common.get_payload_command(job)
    assert cmd.endswith(line + "Reco_tf.py --x")
    for export in ("export PandaID=9;", "export PanDA_TaskID=3;", "export FRONTIER_ID='[3_9]';",
                   "export RUCIO_APPID=reco;", "export PANDA_RESOURCE=Q_RES;", "export CMSSW_VERSION=$FRONTIER_ID;"):
        assert export in cmd


def test_asetup_in_job_parameters_is_not_doubled(job, alrb):
    job.noexecstrcnv = True
    job.jobparams = "source $AtlasSetup/scripts/asetup.sh 21.0.15; Reco_tf.py"
    assert setup.release_setup(job) == ""
    assert common.get_payload_command(job).endswith(job.jobparams)


def test_utility_commands_by_order(job):
    assert common.get_utility_commands(1, job) == {"command": "prep.sh", "args": "-a", "label": "preprocess",
                                                   "ignore_failure": False}
    assert common.get_utility_commands(3, job)["command"] == "MemoryMonitor"
    assert common.get_utility_commands(4, job)["label"] == "coprocess"
    assert common.get_utility_commands(4, job)["ignore_failure"] is True
    assert common.get_utility_commands(6, job)["command"] == "post.sh"
    for order in (2, 5, 7, 8):
        assert common.get_utility_commands(order, job) == {}
    assert common.get_utility_command_setup("preprocess", job) == "prep.sh -a"
    job.pid = 1234
    assert common.get_utility_command_setup("MemoryMonitor", job).startswith("prmon --pid 1234 ")
    assert common.get_utility_command_kill_signal("MemoryMonitor") == signal.SIGUSR1
    assert common.get_utility_command_kill_signal("preprocess") == signal.SIGTERM
    assert common.get_utility_command_output_filename("MemoryMonitor", True) == "memory_monitor_summary.json"
    assert common.allow_timefloor("PUSH") is False and common.allow_timefloor("PULL") is True


def test_url_utility_not_downloadable_is_dropped(job):
    job.preprocess = {"command": "http://not.allowed.example/prep", "args": ""}
    assert common.get_utility_commands(1, job) == {}


REPORT = {
    "exitCode": 0, "exitMsg": "OK",
    "resource": {"transform": {"processedEvents": 0, "cpuTimeTotal": 12},
                 "executor": {"EVNTtoHITS": {"nevents": 40, "dbTime": 1.25, "dbData": 100},
                              "HITtoRDO": {"nevents": 50, "dbTime": 2.0, "dbData": 200}}},
    "files": {"output": [{"subFiles": [{"name": "out.root", "file_guid": "GUID-1", "nentries": 50}]}]},
}


def test_job_report_parsing():
    data = jobreport.parse_jobreport_data(REPORT)
    assert data["nEvents"] == 50 and data["dbTime"] == 3.25 and data["dbData"] == 300
    assert data["outputGuids"] == {"out.root": "GUID-1"} and data["cpuConsumptionTime"] == 12
    report = dict(REPORT, resource={"transform": {"processedEvents": 7}, "dbTimeTotal": 9.5, "dbDataTotal": 5})
    data = jobreport.parse_jobreport_data(report)
    assert (data["nEvents"], data["dbTime"], data["dbData"]) == (7, 9.5, 5)
    assert jobreport.parse_jobreport_data({}) == {} and jobreport.parse_jobreport_data("junk") == {}


def test_metrics_are_cut_at_a_pair_boundary(job):
    job.nevents, job.dbtime, job.dbdata = 50, 3.25, 300
    job.extra_metrics.update({f"extraKey{i:03d}": "x" * 20 for i in range(40)})
    text = jobmetrics.get_job_metrics(job)
    assert len(text) <= MAX_JOBMETRICS
    assert text.startswith("coreCount=1 nEvents=50 dbTime=3.25 dbData=300 ")
    assert all("=" in pair and pair.split("=", 1)[1] for pair in text.split(" "))
    assert text.split(" ")[-1].endswith("x" * 20)


def _write_outputs(job, stdout="", stderr="", report=None):
    with open(f"{job.workdir}/payload.stdout", "w") as handle:
        handle.write(stdout)
    with open(f"{job.workdir}/payload.stderr", "w") as handle:
        handle.write(stderr)
    if report is not None:
        with open(f"{job.workdir}/jobReport.json", "w") as handle:
            json.dump(report, handle)


@pytest.mark.parametrize("exit_code, stdout, stderr, report, code", [
    (1, "", "terminate called after throwing an instance of 'std::bad_alloc'", None, ErrorCodes.BADALLOC),
    (65, "", "", {"exitCode": 65, "exitMsg": "x", "executor": [{"logfileReport": {"details": {"ERROR": [
        {"message": "caught std::bad_alloc"}]}}}]}, ErrorCodes.BADALLOC),
    (0, "", "", {"exitCode": 68, "exitMsg": "Athena got a SIGSEGV signal"}, ErrorCodes.PAYLOADSIGSEGV),
    (139, "", "", None, ErrorCodes.PAYLOADSIGSEGV),
    (1, "AtlasSetup(ERROR): No release candidates found for 99.0.0", "", None, ErrorCodes.NORELEASEFOUND),
    (1, "", "FATAL out of memory: taking the application down", None, ErrorCodes.PAYLOADOUTOFMEMORY),
    (1, "", "write failed: No space left on device", None, ErrorCodes.NOLOCALSPACE),
    (1, "AtlasSetup(FATAL): Fatal exception: bad", "", None, ErrorCodes.SETUPFATAL),
    (1, "sh: /x/setup.sh: No such file or directory", "", None, ErrorCodes.MISSINGINSTALLATION),
    (146, "", "", None, ErrorCodes.NOUSERTARBALL),
    (255, "", "FATAL:   Failed to create user namespace", None, ErrorCodes.SINGULARITYFAILEDUSERNAMESPACE),
    (255, "", "ERROR: Failed invoking the NEWUSER namespace runtime", None, ErrorCodes.SINGULARITYNEWUSERNAMESPACE),
    (251, "", "WARNING: not mounting requested bind point /x", None, ErrorCodes.SINGULARITYBINDPOINTFAILURE),
    (255, "", "FATAL: no more available loop devices", None, ErrorCodes.SINGULARITYNOLOOPDEVICES),
    (255, "", "FATAL: failed to mount image", None, ErrorCodes.SINGULARITYIMAGEMOUNTFAILURE),
    (255, "", "FATAL: operation not permitted", None, ErrorCodes.SINGULARITYGENERALFAILURE),
    (127, "", "bash: singularity: command not found", None, ErrorCodes.SINGULARITYNOTINSTALLED),
    (2, "", "something else", None, ErrorCodes.PAYLOADEXECUTIONFAILURE),
])
def test_diagnosis_of_crafted_failures(job, exit_code, stdout, stderr, report, code):
    _write_outputs(job, stdout, stderr, report)
    job.exitcode = exit_code
    assert diagnose.interpret(job) == code
    assert job.errors.first()[0] == code


def test_core_dump_wins(job, tmp_path):
    _write_outputs(job, "", "std::bad_alloc")
    (tmp_path / "core.123").write_text("core")
    job.exitcode = 1
    assert diagnose.interpret(job) == ErrorCodes.COREDUMP


def test_success_and_harmless_exit_codes(job):
    _write_outputs(job, "all good", "", {"exitCode": 0, "exitMsg": "OK",
                                         "resource": {"transform": {"processedEvents": 3}}})
    job.exitcode = 0
    assert diagnose.interpret(job) == 0 and not job.errors and job.nevents == 3
    assert "workDirSize" in job.extra_metrics
    job.exitcode = 160
    assert diagnose.interpret(job) == 0 and job.exitcode == 0 and not job.errors


def test_remove_redundant_files(tmp_path):
    for name in ("out.root", "other.root", "jobReport.json", "log.EVNTtoHITS", "payload_x509.proxy", "x.py",
                 "payload.stdout"):
        (tmp_path / name).write_text("x")
    (tmp_path / "workDir").mkdir()
    (tmp_path / "workDir" / "f").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    common.remove_redundant_files(str(tmp_path), ["out.root"])
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["jobReport.json", "log.EVNTtoHITS", "out.root", "payload.stdout"]
