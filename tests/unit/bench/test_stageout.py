"""The stage-out scenarios' job shape, settings and arithmetic (bench/pilotbench/stageout.py)."""

import subprocess

from bench.pilotbench import stageout
from bench.pilotbench.__main__ import expand
from bench.pilotbench.jobs import SCRIPT, InputFile, job_definition
from bench.pilotbench.report import _scenario_out, _targets

ENV = {"STORAGE_HOST": "127.0.0.1", "STORAGE_XROOTD_PORT": "1094", "STORAGE_DATA": "/data", "STORAGE_PKI": "/pki"}


def test_expand_gives_base_small_large_of_each_stageout_kind():
    assert expand(["o", "w", "u"]) == [f"{k}-{s}" for k in "owu" for s in ("base", "small", "large")]


def test_the_job_lists_every_extra_output_on_the_stageout_storage_and_the_script_writes_them(tmp_path):
    script = InputFile("bench-payload.sh", len(SCRIPT), "00000001", str(tmp_path / "s"))
    job = job_definition([script], tmp_path / "stamp", 0, False, extra_outputs=3, output_size=100,
                         endpoint_out="PILOT_XRD", scope_out="tests")
    outs = job["outFiles"].split(",")
    assert len(outs) == 5 and outs[-1] == job["logFile"] and outs[1:4] == [f"{outs[0]}.{i:03d}" for i in range(3)]
    for field in ("scopeOut",):
        assert job[field].split(",") == ["tests"] * 4
    for field in ("ddmEndPointOut", "fileDestinationSE", "destinationDBlockToken", "realDatasets"):
        assert len(job[field].split(",")) == 5
    assert set(job["ddmEndPointOut"].split(",")) == {"PILOT_XRD"} and job["scopeLog"] == "tests"
    (tmp_path / "bench-payload.sh").write_bytes(SCRIPT)
    subprocess.run(["bash", "bench-payload.sh", *job["jobPars"].split()], cwd=tmp_path, check=True)
    assert [(tmp_path / name).stat().st_size for name in outs[1:4]] == [100, 100, 100]


def test_without_extra_outputs_the_job_is_the_one_of_the_other_scenarios(tmp_path):
    script = InputFile("bench-payload.sh", 1, "00000001", str(tmp_path / "s"))
    job = job_definition([script], tmp_path / "stamp", 1, False)
    assert job["ddmEndPointOut"] == "LOCAL_DISK,LOCAL_DISK" and job["realDatasets"] == "bench:bench.out,bench:bench.log"
    assert len(job["jobPars"].split()) == 3


def test_queue_settings_send_outputs_and_log_with_the_storages_tool():
    for key, tool in (("xrd", "xrdcp"), ("davs", "gfal"), ("rucio", "rucio")):
        settings = stageout.queue_settings(stageout.OUT_STORAGES[key])
        assert settings["acopytools"]["pw"] == [tool] and settings["acopytools"]["pl"] == [tool]
        assert settings["acopytools"]["pr"] == ["mv"] and settings["astorages"]["pw"] == ["PILOT_XRD"]
    entry = stageout.storage_entry(stageout.OUT_STORAGES["davs"], ENV)
    assert entry["arprotocols"]["pw"][0]["endpoint"] == "davs://127.0.0.1:1094"


def test_smoke_sizes_are_tiny(monkeypatch):
    monkeypatch.setenv("PILOTBENCH_SMOKE", "1")
    assert stageout.out_sizes()["large"][1] <= 2 ** 20
    monkeypatch.delenv("PILOTBENCH_SMOKE")
    assert stageout.out_sizes() == {"none": (0, 0), "small": (200, 10240), "large": (5, 200 * 2 ** 20)}


def _run(scenario, pilot, stageout_s, plain, n, run=0):
    return {"scenario": scenario, "pilot": pilot, "run": run, "jobs": 1, "finished": 1,
            "phases": {"stageout": stageout_s}, "plain_copy": plain, "stageout_outputs": n}


def test_overhead_per_extra_output_subtracts_the_base_and_the_plain_tool():
    results = [_run("o-base", "ours", 1.0, 0.0, 0), _run("o-small", "ours", 3.0, 1.0, 200),
               _run("o-small", "ours", 5.0, 1.0, 200, run=1), _run("o-base", "pilot2", 2.0, 0.0, 0),
               _run("o-small", "pilot2", 42.0, 1.0, 200), _run("o-small", "pilot2", 42.0, 1.0, 200, run=1)]
    assert stageout.run_overheads(results, "o-small", "ours") == {0: 1.0 / 200, 1: 3.0 / 200}
    assert stageout.run_overheads(results, "o-small", "pilot2") == {0: 39.0 / 200, 1: 39.0 / 200}
    assert stageout.run_overheads(results, "o-small", "pilot3") == {}
    md, ratios = _scenario_out(results)
    assert "stage-out overhead per extra output" in md
    (name, values), = ratios.items()
    assert values == [1.0 / 39.0, 3.0 / 39.0]
    assert "stage-out overhead per extra output ≤ 1/5" in _targets({}, {}, {}, {}, ratios)


def test_a_stalled_plain_copy_does_not_swing_one_pilots_overhead():
    # the plain copies of one scenario (all pilots, before and after each run) are pooled: one stalled
    # timing (30 s instead of 0.4 s) beside one pilot's run no longer makes its overhead negative
    results = [_run("o-base", "ours", 1.0, 0.0, 0), _run("o-base", "pilot2", 2.0, 0.0, 0),
               {**_run("o-small", "ours", 5.0, 0.4, 200), "plain_copies": [0.4, 30.0]},
               {**_run("o-small", "pilot2", 42.0, 0.4, 200), "plain_copies": [0.4, 0.4]},
               {**_run("o-small", "pilot2", 42.0, 0.4, 200, run=1), "plain_copies": [0.4, 0.5]}]
    assert stageout.pooled_plain_copy(results, "o-small") == 0.4
    assert stageout.run_overheads(results, "o-small", "ours") == {0: (4.0 - 0.4) / 200}
    assert stageout.pooled_plain_copy(results, "o-none") is None


def test_an_unfinished_run_is_left_out():
    results = [_run("w-base", "ours", 1.0, 0.0, 0), {**_run("w-large", "ours", 9.0, 1.0, 5), "finished": 0}]
    assert stageout.run_overheads(results, "w-large", "ours") == {}


def test_the_report_states_the_load_before_the_runs():
    from bench.pilotbench.report import _loads_line

    assert "median 2.00, 1.00–3.00 over 3 runs" in _loads_line([{"loadavg_before": v} for v in (1.0, 2.0, 3.0)])
    assert "not recorded" in _loads_line([{}])


def test_the_config_can_point_rucio_host_at_the_loopback_rucio():
    from bench.pilotbench.pilots import PILOTS, config_text

    text = config_text(PILOTS["ours"], "http://h:1", "https://h:2", {"Rucio": {"host": "http://127.0.0.1:18580"}})
    assert "host = http://127.0.0.1:18580" in text and "url = http://h:1/traces/" in text
