"""Every Pilot 2 spelling and value form of an option parses to the same meaning (issue: option compat)."""

from __future__ import annotations

import pytest

from pilot.util.parameters import parse_args

BASE = ["-q", "Q"]

# (Pilot 2 overview spelling, final pilot.py / Pilot 3 spelling, value, attribute, expected)
ALIASES = [
    ("--countrygroup", "--country-group", "de", "country_group", "de"),
    ("--workinggroup", "--working-group", "AP_HIGGS", "working_group", "AP_HIGGS"),
    ("--allowothercountry", "--allow-other-country", "True", "allow_other_country", True),
    ("--allowsameuser", "--allow-same-user", "false", "allow_same_user", False),
    ("--pilotuser", "--pilot-user", "ATLAS", "pilot_user", "atlas"),
]


@pytest.mark.parametrize("old, new, value, attribute, expected", ALIASES)
def test_overview_spellings(old, new, value, attribute, expected):
    assert getattr(parse_args(BASE + [old, value]), attribute) == expected
    assert getattr(parse_args(BASE + [new, value]), attribute) == expected
    assert getattr(parse_args(BASE + [f"{old}={value}"]), attribute) == expected


@pytest.mark.parametrize("argv, expected", [
    ([], False),
    (["--use-realtime-logging"], True),  # Pilot 3: a flag
    (["--use-realtime-logging", "True"], True),  # Pilot 2: a boolean value
    (["--use-realtime-logging", "false"], False),
    (["--use-realtime-logging=yes"], True),
    (["--use-realtime-logging", "-d"], True),  # a flag followed by another option
])
def test_use_realtime_logging_value_forms(argv, expected):
    assert parse_args(BASE + argv).use_realtime_logging is expected


@pytest.mark.parametrize("flag", ["--allow-other-country", "--allowsameuser", "--cleanup", "--use-https",
                                  "--use-rucio-traces"])
@pytest.mark.parametrize("text, value", [("yes", True), ("t", True), ("1", True), ("No", False), ("f", False),
                                         ("0", False)])
def test_boolean_strings(flag, text, value):
    args = parse_args(BASE + [flag, text])
    dest = {"--allow-other-country": "allow_other_country", "--allowsameuser": "allow_same_user",
            "--cleanup": "cleanup", "--use-https": "use_https", "--use-rucio-traces": "use_rucio_traces"}[flag]
    assert getattr(args, dest) is value


def test_bad_boolean_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(BASE + ["--allowothercountry", "maybe"])
    assert info.value.code == 2 and "boolean value expected" in capsys.readouterr().err


@pytest.mark.parametrize("short, long_, value, attribute, expected", [
    ("-a", "--workdir", "/tmp/x", "workdir", "/tmp/x"), ("-j", "--joblabel", "user", "job_label", "user"),
    ("-i", "--versiontag", "RC", "version_tag", "RC"), ("-l", "--lifetime", "600", "lifetime", 600),
    ("-v", "--getjobrequests", "3", "getjob_requests", 3), ("-x", "--getjobfailures", "4", "getjob_failures", 4),
    ("-g", "--baseurls", "http://a,http://b", "baseurls", "http://a,http://b"),
    ("-w", "--workflow", "stager", "workflow", "stager"),
])
def test_pilot3_long_aliases(short, long_, value, attribute, expected):
    assert getattr(parse_args(BASE + [short, value]), attribute) == expected
    assert getattr(parse_args(BASE + [long_, value]), attribute) == expected


@pytest.mark.parametrize("short, long_, attribute", [
    ("-z", "--noserverupdate", "update_server"), ("-t", "--noproxyverification", "verify_proxy"),
    ("-u", "--verifypayloadproxy", "verify_payload_proxy"), ("-y", "--notokenrenewal", "token_renewal"),
    ("-k", "--noworkerpilotstatusupdate", "workerpilotstatusupdate"), ("-b", "--nocvmfs", "cvmfs"),
])
def test_negative_flags(short, long_, attribute):
    assert getattr(parse_args(BASE), attribute) is True
    assert getattr(parse_args(BASE + [short]), attribute) is False
    assert getattr(parse_args(BASE + [long_]), attribute) is False
