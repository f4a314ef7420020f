"""Configuration: packaged defaults, layering, value conversion, environment references."""

import os
from pathlib import Path

import pytest

from pilot.common.exception import ConfigurationError, PilotException
from pilot.util.config import DEFAULT_CONFIG_FILE, Config, config, convert_value

REPO_ROOT = Path(__file__).resolve().parents[3]

# compat reference 3 (and our additions): section -> {key: default after conversion}
EXPECTED_DEFAULTS = {
    "Pilot": {
        "pilotlog": "pilotlog.txt", "pandajobdata": "pandaJobData.out", "pandajob": "real",
        "pandaserver": "https://pandaserver.cern.ch:25443", "heartbeat": 1800, "debug_heartbeat": 60,
        "heartbeat_message": "heartbeat.json", "jobid_file": "pandaIDs.out", "free_space_limit": "2 GB",
        "free_space_limit_running": "1 GB", "maximum_output_file_size": "500 GB",
        "maximum_input_file_sizes": "14336 MB", "local_size_limit_stdout": 2097152,
        "looping_verification_time": 900, "looping_limit_default": 7200, "looping_limit_min_default": 7200,
        "kill_instruction_time": 60, "kill_instruction_filename": "pilot_kill_payload",
        "proxy_verification_time": 600, "payload_proxy_from_server": True, "disk_space_verification_time": 60,
        "memory_usage_verification_time": 60, "process_verification_time": 300, "thread_check": 10,
        "timing_file": "pilot_timing.json", "utility_after_payload_started": "MemoryMonitor",
        "http_connect_timeout": 100, "http_maxtime": 120,
        "remotefileverification_dictionary": "remotefileverification_dictionary.json",
        "remotefileverification_log": "remotefileslog.txt", "base_trace_report": "base_trace_report.json",
        "outbox_dir": "pilot_outbox", "http_retries": 10, "http_backoff": 1,
    },
    "Information": {
        "cache_dir": "", "queuedata_cache": "queuedata.json", "queues_cache": "cric_pandaqueues.json",
        "storages_cache": "cric_ddmendpoints.json",
    },
    "Payload": {"jobreport": "jobReport.json", "metadata": "metadata.xml", "payloadstdout": "payload.stdout",
                "payloadstderr": "payload.stderr"},
    "Container": {"setup_type": "ALRB", "container_script": "container_script.sh",
                  "release_setup": "my_release_setup.sh"},
    "Harvester": {
        "job_request_file": "worker_requestjob.json", "kill_worker_file": "kill_worker",
        "jobs_list_file": "worker_pandaids.json", "pandajob_file": "HPCJobs.json",
        "workerattributesfile": "worker_attributes.json", "workerattributes_file": "worker_attributes.json",
        "stageoutnfile": "event_status.dump.json", "stageoutn_file": "event_status.dump.json",
        "heartbeat_file": "worker_heartbeat.json", "requestevents_file": "worker_requestevents.json",
        "eventranges_file": "JobsEventRanges.json", "updateevents_file": "worker_updateevents.json",
    },
    "HPC": {"scratch": "/tmp/scratch/"},
    "Rucio": {"url": "https://rucio-lb-prod.cern.ch/traces/"},
}


def defaults_only(env=None):
    return Config(locations=[], env=env or {})


def write(path, text):
    path.write_text(text)
    return str(path)


def test_packaged_defaults_have_every_compat_key():
    cfg = defaults_only()
    for section, values in EXPECTED_DEFAULTS.items():
        for key, value in values.items():
            assert getattr(cfg[section], key) == value, (section, key)
    for key in ("queuedata_url", "queuedata_cvmfs", "queues_url", "queues_cvmfs", "storages_url", "storages_cvmfs"):
        assert cfg.Information.get(key)
    assert "{pandaqueue}" in cfg.Information.queuedata_url
    assert cfg.Information.queuedata_cvmfs.startswith("CVMFS_PATH")
    for key in ("middleware_container", "middleware_container_stagein_script", "middleware_stagein_stdout"):
        assert cfg.Container.get(key)
    assert cfg.Pilot.redundant.endswith("redundant.txt")


def test_repo_root_default_cfg_is_the_packaged_file():
    """One default.cfg: the root name (where Pilot 2 users look) is a link to the packaged file."""
    assert Path(DEFAULT_CONFIG_FILE) == REPO_ROOT / "pilot" / "util" / "default.cfg"
    root = REPO_ROOT / "default.cfg"
    assert root.is_symlink() and root.resolve() == Path(DEFAULT_CONFIG_FILE).resolve()


def test_module_instance_reads_package_default():
    assert os.path.abspath(DEFAULT_CONFIG_FILE) in config.sources
    assert isinstance(config.Pilot.heartbeat, int)


def test_case_insensitive_options_and_sections():
    cfg = defaults_only()
    assert cfg.Harvester.workerAttributesFile == "worker_attributes.json"
    assert cfg.Harvester["StageOutnFile"] == "event_status.dump.json"
    assert "HEARTBEAT" in cfg.Pilot
    assert cfg.pilot.heartbeat == 1800
    assert "rucio" in cfg and "Nope" not in cfg


def test_missing_key_and_section():
    cfg = defaults_only()
    with pytest.raises(AttributeError, match="no_such_key"):
        _ = cfg.Pilot.no_such_key
    assert getattr(cfg.Pilot, "no_such_key", "dflt") == "dflt"
    assert cfg.Pilot.get("no_such_key", 5) == 5
    with pytest.raises(KeyError):
        _ = cfg.Pilot["no_such_key"]
    with pytest.raises(AttributeError):
        _ = cfg.NoSuchSection
    assert cfg.get("NoSuchSection", "x", "d") == "d"


@pytest.mark.parametrize("raw,expected", [
    ("true", True), ("True", True), ("FALSE", False), ("none", None), ("None", None), ("42", 42), ("-3", -3),
    ("007", 7), ("2 GB", "2 GB"), ("1.5", "1.5"), ("", ""), ("  spaced  ", "spaced"), ("a$B", "a$B"),
])
def test_value_conversion(raw, expected):
    assert convert_value(raw, {}) == expected


def test_environment_reference():
    assert convert_value("$MY_VAR", {"MY_VAR": "123"}) == "123"
    assert convert_value("${MY_VAR}", {"MY_VAR": "x"}) == "x"


def test_missing_environment_variable_names_variable_and_key(tmp_path):
    base = write(tmp_path / "base.cfg", "[Pilot]\nsecret: $PILOT_TEST_UNSET_VAR\nplain: 1\n")
    cfg = Config(default_file=base, locations=[], env={})
    assert cfg.Pilot.plain == 1  # other keys stay usable
    with pytest.raises(ConfigurationError) as info:
        _ = cfg.Pilot.secret
    assert isinstance(info.value, PilotException)
    assert "PILOT_TEST_UNSET_VAR" in info.value.diag and "secret" in info.value.diag and "[Pilot]" in info.value.diag
    assert cfg.as_dict(raw=True)["Pilot"]["secret"] == "$PILOT_TEST_UNSET_VAR"
    env_cfg = Config(default_file=base, locations=[], env={"PILOT_TEST_UNSET_VAR": "s3cr3t"})
    assert env_cfg.Pilot.secret == "s3cr3t"


def test_layering_order_key_by_key(tmp_path):
    base = write(tmp_path / "base.cfg", "[Pilot]\na: base\nb: base\nc: base\nd: base\ne: base\n[Other]\nx: 1\n")
    site = write(tmp_path / "site.cfg", "[Pilot]\nb: site\nc: site\nd: site\ne: site\n")
    launch = write(tmp_path / "launch.cfg", "[Pilot]\nc: launch\nd: launch\ne: launch\n")
    option = write(tmp_path / "option.cfg", "[Pilot]\nd: option\ne: option\n[New]\ny: 2\n")
    harvester = write(tmp_path / "harvester.cfg", "[pilot]\nE: harvester\n")
    cfg = Config(default_file=base, locations=[site, str(tmp_path / "absent.cfg"), launch], extra=[option],
                 env={"HARVESTER_PILOT_CONFIG": harvester})
    assert [cfg.Pilot.get(k) for k in "abcde"] == ["base", "site", "launch", "option", "harvester"]
    assert cfg.Other.x == 1 and cfg.New.y == 2
    assert cfg.sources == [os.path.abspath(p) for p in (base, site, launch, option, harvester)]
    assert cfg.as_dict()["Pilot"]["e"] == "harvester"


def test_load_file_and_reload(tmp_path):
    base = write(tmp_path / "base.cfg", "[Pilot]\nheartbeat: 1800\n")
    first = write(tmp_path / "first.cfg", "[Pilot]\nheartbeat: 10\n")
    second = write(tmp_path / "second.cfg", "[Pilot]\nheartbeat: 20\n")
    harvester = write(tmp_path / "h.cfg", "[Pilot]\nheartbeat: 99\n")
    env = {}
    cfg = Config(default_file=base, locations=[], env=env)
    cfg.load_file(first)
    assert cfg.Pilot.heartbeat == 10
    cfg.load_file(second)
    assert cfg.Pilot.heartbeat == 20
    env["HARVESTER_PILOT_CONFIG"] = harvester
    cfg.reload()
    assert cfg.Pilot.heartbeat == 99  # the Harvester file stays last
    del env["HARVESTER_PILOT_CONFIG"]
    cfg.reload(extra=[])
    assert cfg.Pilot.heartbeat == 1800 and cfg.sources == [os.path.abspath(base)]


def test_missing_explicit_config_file_is_an_error(tmp_path):
    cfg = defaults_only()
    with pytest.raises(ConfigurationError, match="does not exist"):
        cfg.load_file(str(tmp_path / "nope.cfg"))


def test_missing_harvester_file_is_ignored(tmp_path):
    cfg = Config(locations=[], env={"HARVESTER_PILOT_CONFIG": str(tmp_path / "nope.cfg")})
    assert cfg.Pilot.heartbeat == 1800
    assert len(cfg.sources) == 1


def test_broken_file_is_reported(tmp_path):
    bad = write(tmp_path / "bad.cfg", "no section header here\n")
    with pytest.raises(ConfigurationError, match="bad.cfg"):
        Config(locations=[], extra=[bad], env={})


def test_launch_directory_file_is_read(tmp_path, monkeypatch):
    write(tmp_path / "pilot.cfg", "[Pilot]\nheartbeat: 5\n")
    monkeypatch.chdir(tmp_path)
    cfg = Config(env={})
    assert cfg.Pilot.heartbeat == 5
    assert str(tmp_path / "pilot.cfg") in cfg.sources


def test_set_overrides_survive_reload():
    cfg = defaults_only()
    cfg.set("Pilot", "Heartbeat", 3)
    cfg.set("Extra", "flag", True)
    cfg.reload()
    assert cfg.Pilot.heartbeat == 3 and cfg.Extra.flag is True
    cfg.clear_overrides()
    assert cfg.Pilot.heartbeat == 1800 and "Extra" not in cfg
    with pytest.raises(AttributeError):
        cfg.Pilot.heartbeat = 1
