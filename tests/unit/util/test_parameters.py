"""Command-line options: defaults, aliases, validation, server URL, job label rules."""

import argparse

import pytest

from pilot.util.config import Config
from pilot.util.parameters import (
    build_parser, get_server_url, option_strings, parse_args, resolve_job_label, str2bool,
)

# dest -> default (compat 2, Pilot 3 additions, --config)
DEFAULTS = {
    "queue": "Q", "pilot_user": "generic", "workflow": "generic", "workdir": "", "debug": False,
    "nopilotlog": False, "lifetime": 324000, "leasetime": 3600, "job_label": "ptest", "version_tag": "PR",
    "resource": None, "site": None, "baseurls": "", "config": "", "redirectstdout": "", "pod": False,
    "cleanup": True, "url": "", "port": 25443, "update_server": True, "workerpilotstatusupdate": True,
    "verify_proxy": True, "verify_payload_proxy": True, "token_renewal": True, "getjob_requests": 2,
    "getjob_failures": 5, "cacert": None, "capath": None, "use_https": True, "queuedata_url": "",
    "storagedata_url": "", "rucio_host": "", "subscribe_to_msgsvc": False, "country_group": "",
    "working_group": "", "allow_other_country": False, "allow_same_user": True, "jobtype": "",
    "resource_type": "", "background": False,
    "harvester_workdir": "", "harvester_datadir": "", "harvester_eventstatusdump": "",
    "harvester_workerattributes": "", "harvester_submitmode": "PULL", "input_dir": "",
    "input_destination_dir": "", "output_dir": "", "use_rucio_traces": True, "stageout_attempts": 1,
    "use_realtime_logging": False, "realtime_logging_server": "", "realtime_logname": None, "cvmfs": True,
    "hpc_resource": "", "hpc_mode": "manytoone", "executor_type": "generic",
}

COMPAT_FLAGS = [
    "-q", "--pilot-user", "-w", "-a", "-d", "--no-pilot-log", "-l", "-j", "-i", "-r", "-s", "-z", "-t", "-u",
    "-v", "-x", "--url", "-p", "--cacert", "--capath", "--queuedata-url", "--country-group", "--working-group",
    "--allow-other-country", "--allow-same-user", "--harvester-workdir", "--harvester-datadir",
    "--harvester-eventstatusdump", "--harvester-workerattributes", "--harvester-submit-mode", "--resource-type",
    "--use-https", "--cleanup", "--use-rucio-traces", "--use-realtime-logging", "--realtime-logging-server",
    "--input-dir", "--output-dir", "--job-type", "--hpc-resource", "--hpc-mode", "--es-executor-type",
    # Pilot 3 only
    "--redirect-stdout", "-L", "--leasetime", "-b", "--nocvmfs", "--stageout-attempts", "--input-destination-dir",
    "--pod", "-y", "--notokenrenewal", "--storagedata-url", "-k", "--noworkerpilotstatusupdate",
    "--subscribe-to-msgsvc", "-g", "--baseurls", "--realtime-logname", "--rucio-host",
    "--queue", "--workdir", "--debug", "--workflow", "--lifetime", "--resource", "--site", "--joblabel",
    "--versiontag", "--noserverupdate", "--noproxyverification", "--verifypayloadproxy", "--getjobrequests",
    "--getjobfailures", "--port",
    # ours
    "--config",
]


def test_every_default():
    args = parse_args(["-q", "Q"])
    assert vars(args) == DEFAULTS


def test_every_flag_is_accepted_and_documented():
    flags = option_strings()
    for flag in COMPAT_FLAGS:
        assert flag in flags
    for action in build_parser()._actions:
        assert action.help and "\n" not in action.help


def test_help_lists_everything(capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--harvester-submit-mode", "--es-executor-type", "--config", "--stageout-attempts"):
        assert flag in out


def test_all_values_parse():
    argv = [
        "-q", "MY_QUEUE", "--pilot-user", "ATLAS", "-w", "production", "-a", "/scratch", "-d", "--no-pilot-log",
        "-l", "1000", "-j", "managed", "-i", "RC", "-r", "R", "-s", "S", "-z", "-t", "-u", "-v", "60", "-x", "3",
        "--url", "https://x.org", "-p", "443", "--cacert", "/p", "--capath", "/c", "--queuedata-url", "qu",
        "--country-group", "cg", "--working-group", "wg", "--allow-other-country", "yes", "--allow-same-user", "n",
        "--harvester-workdir", "/h", "--harvester-datadir", "/d", "--harvester-eventstatusdump", "e.json",
        "--harvester-workerattributes", "w.json", "--harvester-submit-mode", "push", "--resource-type", "SCORE_HIMEM",
        "--use-https", "0", "--cleanup", "False", "--use-rucio-traces", "f", "--use-realtime-logging",
        "--realtime-logging-server", "logstash:h:80", "--input-dir", "/in", "--output-dir", "/out",
        "--job-type", "user", "--hpc-resource", "titan", "--hpc-mode", "jumbojobs", "--es-executor-type", "raythena",
        "--redirect-stdout", "/dev/null", "-L", "10", "-b", "--stageout-attempts", "2",
        "--input-destination-dir", "/dst", "--pod", "-y", "--storagedata-url", "su", "-k", "--subscribe-to-msgsvc",
        "-g", "http://a", "--realtime-logname", "ln", "--rucio-host", "https://rucio", "--config", "my.cfg",
    ]
    args = parse_args(argv)
    assert args.queue == "MY_QUEUE" and args.pilot_user == "atlas" and args.workflow == "production"
    assert args.debug and args.nopilotlog and args.lifetime == 1000 and args.port == 443
    assert not args.update_server and not args.verify_proxy and not args.verify_payload_proxy
    assert args.getjob_requests == 60 and args.getjob_failures == 3
    assert args.allow_other_country is True and args.allow_same_user is False
    assert args.harvester_submitmode == "PUSH" and args.resource_type == "SCORE_HIMEM"
    assert args.use_https is False and args.cleanup is False and args.use_rucio_traces is False
    assert args.use_realtime_logging and args.executor_type == "raythena" and args.jobtype == "user"
    assert not args.cvmfs and not args.token_renewal and not args.workerpilotstatusupdate
    assert args.config == "my.cfg" and args.stageout_attempts == 2 and args.leasetime == 10


@pytest.mark.parametrize("workflow", ["generic", "generic_hpc", "production", "production_hpc", "analysis",
                                      "analysis_hpc", "eventservice_hpc", "stagein", "stager", "payload_stageout"])
def test_workflows(workflow):
    assert parse_args(["-q", "Q", "-w", workflow]).workflow == workflow


@pytest.mark.parametrize("value", ["SCORE", "MCORE", "SCORE_HIMEM", "MCORE_HIMEM", "MCORE_LOMEM", ""])
def test_resource_types_ok(value):
    assert parse_args(["-q", "Q", "--resource-type", value]).resource_type == value


@pytest.mark.parametrize("argv", [
    [],                                                    # -q missing
    ["-q", "Q", "--allow-other-country", "maybe"],         # bad boolean
    ["-q", "Q", "--use-https", "2"],
    ["-q", "Q", "--cleanup", ""],
    ["-q", "Q", "-w", "nosuchflow"],
    ["-q", "Q", "--resource-type", "GPU"],
    ["-q", "Q", "--resource-type", "score"],
    ["-q", "Q", "--harvester-submit-mode", "POLL"],
    ["-q", "Q", "-p", "http"],
    ["-q", "Q", "-p", "70000"],
    ["-q", "Q", "-l", "-5"],
    ["-q", "Q", "--unknown-option"],
    ["-q", "Q", "-z", "extra-positional"],
])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pilot.py: error: ")  # one line, no usage dump


@pytest.mark.parametrize("text,value", [("yes", True), ("TRUE", True), ("t", True), ("Y", True), ("1", True),
                                        ("no", False), ("False", False), ("f", False), ("n", False), ("0", False)])
def test_str2bool(text, value):
    assert str2bool(text) is value


def test_str2bool_error_message():
    with pytest.raises(argparse.ArgumentTypeError, match="boolean value expected"):
        str2bool("perhaps")


@pytest.mark.parametrize("url,port,expected", [
    ("https://pandaserver.cern.ch", 25443, "https://pandaserver.cern.ch:25443"),
    ("https://pandaserver.cern.ch:443", 25443, "https://pandaserver.cern.ch:443"),
    ("pandaserver.cern.ch", 25443, "https://pandaserver.cern.ch:25443"),
    ("http://127.0.0.1/", 8080, "http://127.0.0.1:8080"),
    ("http://127.0.0.1:9000", 8080, "http://127.0.0.1:9000"),
    ("https://[::1]", 25443, "https://[::1]:25443"),
])
def test_server_url_from_options(url, port, expected):
    args = parse_args(["-q", "Q", "--url", url, "-p", str(port)])
    assert get_server_url(args) == expected


def test_server_url_default_from_config(tmp_path):
    args = parse_args(["-q", "Q"])
    assert get_server_url(args) == "https://pandaserver.cern.ch:25443"
    cfg_file = tmp_path / "c.cfg"
    cfg_file.write_text("[Pilot]\npandaserver: myhost.example:1234\n")
    cfg = Config(default_file=str(cfg_file), locations=[], env={})
    assert get_server_url(args, cfg) == "https://myhost.example:1234"


@pytest.mark.parametrize("tag,label,status,expected", [
    ("PR", "ptest", "", "ptest"),
    ("PR", "managed", "", "managed"),
    ("RC", "rc_test2", "", "rc_test2"),
    ("RC", "ptest", "test", "ptest"),
    ("RCM", "ptest", "", "rcm_test2"),
    ("RCM", "managed", "", "managed"),
    ("ALRB", "managed", "", "rc_alrb"),
    ("PR", "managed", "test", "test"),
    ("PR", "ptest", "test", "ptest"),
    ("RCM", "ptest", "test", "rcm_test2"),
])
def test_resolve_job_label(tag, label, status, expected):
    assert resolve_job_label(tag, label, status) == expected
