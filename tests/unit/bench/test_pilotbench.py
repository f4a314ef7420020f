"""The bench's own logic: scenario selection, job definitions, the stage-in overhead and the targets.

No measured number is asserted here (the bench is run by hand); these tests pin down how the numbers are
computed from a results document, and that the payload line of scenario x runs a script that arrived
without its mode bits.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bench.pilotbench.__main__ import expand
from bench.pilotbench.jobs import (SCRIPT, SCRIPT_LFN, InputFile, Storage, job_definition, read_stamps,
                                   rucio_path)
from bench.pilotbench.report import _parts_line, _scenario_x, _stagein_overheads, _targets, merge_documents
from bench.pilotbench.xrdstorage import RSE, XrdStorage


def _inputs(count: int) -> list:
    return [InputFile(SCRIPT_LFN, len(SCRIPT), "00000001", "/s")] + \
        [InputFile(f"f{i}", 10, "00000001", f"/f{i}") for i in range(count - 1)]


def test_expand_keeps_order_and_splits_c_and_x():
    assert expand(["a", "x", "d"]) == ["a", "x-base", "x-small", "x-large", "d"]
    assert expand(["c"]) == ["c-base", "c-small", "c-large"]
    with pytest.raises(SystemExit):
        expand(["z"])


def test_local_job_runs_the_script_directly(tmp_path):
    job = job_definition(_inputs(3), tmp_path / "stamp", 1, via_bash=False)
    assert job["transformation"] == f"./{SCRIPT_LFN}"
    assert not job["jobPars"].startswith("2>")
    assert job["ddmEndPointIn"] == "LOCAL_DISK,LOCAL_DISK,LOCAL_DISK"


def test_xrd_job_line_runs_a_script_without_mode_bits(tmp_path):
    """The references run ``./<transformation> <jobPars>`` through a shell; xrdcp drops the exec bit."""
    stamp = tmp_path / "stamp.txt"
    job = job_definition(_inputs(2), stamp, 0, via_bash=False, endpoint_in=RSE)
    assert job["ddmEndPointIn"] == f"{RSE},{RSE}"
    work = tmp_path / "work"
    work.mkdir()
    (work / SCRIPT_LFN).write_bytes(SCRIPT)
    os.chmod(work / SCRIPT_LFN, 0o644)
    line = f"{job['transformation']} {job['jobPars']}"
    result = subprocess.run(["bash", "-c", line], cwd=work, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    stamps = read_stamps(stamp)
    assert stamps["start"] is not None and stamps["end"] is not None
    assert SCRIPT_LFN in stamps["ctimes"]
    out = job["outFiles"].split(",")[0]
    assert (work / out).read_text().strip() == str(len(SCRIPT))


def _result(scenario: str, pilot: str, run: int, last: float, inputs: int, plain=None) -> dict:
    result = {"scenario": scenario, "pilot": pilot, "run": run, "getjob_to_last_input": last, "inputs": inputs,
              "stagein": last + 0.01}
    if plain is not None:
        result["plain_copy"] = plain
    return result


def test_x_overhead_uses_x_base_and_subtracts_plain_xrdcp_for_every_pilot():
    # the script alone copies in 0.05 s, all 6 inputs in 0.55 s: the 5 extra files cost 0.1 s each
    results = [_result("x-base", "pilot3", 0, 0.2, 1, plain=0.05), _result("x-base", "ours", 0, 0.02, 1, plain=0.05),
               _result("x-large", "pilot3", 0, 2.2, 6, plain=0.55), _result("x-large", "ours", 0, 0.77, 6, plain=0.55),
               _result("a", "ours", 0, 5.0, 1)]  # scenario a is not x's baseline
    assert _stagein_overheads(results, "x-large", "pilot3")[0] == pytest.approx(0.4 - 0.1)
    assert _stagein_overheads(results, "x-large", "ours")[0] == pytest.approx(0.15 - 0.1)


def test_x_overhead_subtracts_the_checked_copy_when_measured_and_shows_the_bare_one():
    # the bare copy costs 0.1 s per extra file, xrdcp's checksum 0.05 s more: the pilot's own cost is the rest
    results = []
    for pilot, base, large in (("pilot3", 0.2, 2.2), ("ours", 0.02, 0.77)):
        results += [_result("x-base", pilot, 0, base, 1, plain=0.05),
                    _result("x-large", pilot, 0, large, 6, plain=0.55)]
        results[-2]["plain_copy_cksum"], results[-1]["plain_copy_cksum"] = 0.06, 0.81
    assert _stagein_overheads(results, "x-large", "pilot3")[0] == pytest.approx(0.4 - 0.15)
    assert _stagein_overheads(results, "x-large", "ours")[0] == pytest.approx(0.15 - 0.15)
    assert _stagein_overheads(results, "x-large", "ours", "plain_copy")[0] == pytest.approx(0.15 - 0.1)
    markdown, ratios = _scenario_x(results)
    assert list(ratios) == ["5 × 200 MB: getJob → payload start (s)", "5 × 200 MB: getJob → last input in place (s)",
                            "5 × 200 MB: stage-in overhead per extra input file (ms)"]
    assert "against a bare copy, xrdcp's checksum counted as overhead" in markdown
    assert "plain `xrdcp --cksum adler32:print`" in markdown


def test_c_overhead_subtracts_cp_only_where_recorded():
    results = [_result("a", "pilot2", 0, 0.1, 1), _result("c-small", "pilot2", 0, 2.1, 201),
               _result("a", "ours", 0, 0.02, 1), _result("c-small", "ours", 0, 0.22, 201, plain=0.201)]
    assert _stagein_overheads(results, "c-small", "pilot2")[0] == pytest.approx(0.01)
    assert _stagein_overheads(results, "c-small", "ours")[0] == pytest.approx(0.001 - 0.001)


def test_x_table_and_targets_compare_copies_with_copies():
    results = []
    for run in range(3):
        for pilot, base, large in (("pilot2", 0.3, 3.3), ("pilot3", 0.2, 2.7), ("ours", 0.02, 0.57)):
            results += [_result("x-base", pilot, run, base, 1, plain=0.05),
                        _result("x-large", pilot, run, large, 6, plain=0.3)]
    markdown, ratios = _scenario_x(results)
    key = "5 × 200 MB: stage-in overhead per extra input file (ms)"
    # per file: pilot2 0.6-0.05, pilot3 0.5-0.05, ours 0.11-0.05 -> ours / best (pilot3) = 0.06/0.45
    assert ratios[key] == pytest.approx([0.06 / 0.45] * 3)
    assert "plain `xrdcp`" in markdown
    c_ratios = {"5 × 200 MB: stage-in overhead per extra input file (ms)": {"ours": [35.0], "ours-link": [0.05]}}
    table = _targets({}, c_ratios, {}, ratios)
    assert "5 × 200 MB, xrdcp copies through Rucio | met (0.133)" in table
    assert "5 × 200 MB, mv links (ours in symlink mode) | met (0.050)" in table
    assert "35" not in table  # ours' copies against the references' links are no target


def test_xrd_storage_describes_the_rse(monkeypatch, tmp_path):
    monkeypatch.setattr("bench.pilotbench.xrdstorage.storage_environment", lambda: {
        "STORAGE_DATA": str(tmp_path), "STORAGE_HOST": "127.0.0.1", "STORAGE_XROOTD_PORT": "1094",
        "RUCIO_CONFIG": "/x/rucio-client.cfg", "STORAGE_RUCIO_VENV": "/x/venv"})
    xrd = XrdStorage()
    f = InputFile("bench.large.000.dat", 1, "00000001", "/src")
    scope = xrd.scope_for([f])
    assert xrd.pfn(f, scope) == f"root://127.0.0.1:1094//rucio/xrd/{rucio_path(scope, f.lfn)}"
    entry = xrd.storage_entry()
    protocol = entry["arprotocols"]["read_lan"][0]
    assert entry["is_deterministic"] and entry["name"] == RSE
    assert protocol["endpoint"] + protocol["path"] + rucio_path(scope, f.lfn) == xrd.pfn(f, scope)
    # files of another bench work dir under the same names (other contents) get another scope
    other = InputFile("bench.large.000.dat", 1, "00000002", "/elsewhere")
    assert xrd.scope_for([other]) != scope and xrd.scope_for([f]) == scope
    assert len(scope) <= 25 and scope.isalnum()
    settings = xrd.queue_settings()
    assert settings["acopytools"]["pr"] == ["xrdcp"] and settings["astorages"]["pr"] == [RSE]
    assert settings["acopytools"]["pw"] == ["mv"] and settings["astorages"]["pw"] == ["LOCAL_DISK"]
    assert xrd.pilot_env() == {"RUCIO_CONFIG": "/x/rucio-client.cfg"}
    assert Path(xrd.rse_dir) == tmp_path / "rucio" / "xrd"


def test_publishing_the_script_on_the_rse_keeps_it_executable_for_the_other_scenarios(monkeypatch, tmp_path):
    monkeypatch.setattr("bench.pilotbench.xrdstorage.storage_environment", lambda: {
        "STORAGE_DATA": str(tmp_path / "xrd"), "STORAGE_HOST": "127.0.0.1", "STORAGE_XROOTD_PORT": "1094",
        "RUCIO_CONFIG": "/x/rucio-client.cfg", "STORAGE_RUCIO_VENV": "/x/venv"})
    storage = Storage(str(tmp_path / "file-storage"))
    script = storage.script()
    xrd = XrdStorage()
    scope = xrd.scope_for([script])
    xrd._registered.add((scope, script.lfn))  # no Rucio server here: only the placement is under test
    xrd.publish([script], scope)
    placed = xrd.rse_dir / rucio_path(scope, script.lfn)
    assert placed.read_bytes() == SCRIPT
    assert os.stat(script.path).st_mode & 0o777 == 0o755  # the link shares the inode: its mode is untouched
    os.chmod(script.path, 0o644)  # as a bench before the fix left it
    assert os.stat(storage.script().path).st_mode & 0o777 == 0o755


def _document(started: float, commit: str, scenarios: list, results: list, cores: int = 2) -> dict:
    return {"started": started, "finished": started + 600, "runs": 3, "runs_long": 1, "scenarios": scenarios,
            "results": results, "install": {"python39_version": "3.9.18"},
            "machine": {"cores": cores, "cpu": "X", "arch": "x86_64", "python": "3.11.7", "commit": commit}}


def test_merge_replaces_the_scenarios_a_later_part_redid():
    first = _document(1000.0, "aaa", ["a", "x-base"], [{"scenario": "a", "n": 1}, {"scenario": "x-base", "n": 1}])
    second = _document(5000.0, "bbb", ["x-base", "d"], [{"scenario": "x-base", "n": 2}, {"scenario": "d", "n": 2}])
    merged = merge_documents([first, second])
    assert merged["scenarios"] == ["a", "x-base", "d"]
    assert merged["results"] == [{"scenario": "a", "n": 1}, {"scenario": "x-base", "n": 2}, {"scenario": "d", "n": 2}]
    assert (merged["started"], merged["finished"]) == (1000.0, 5600.0)
    assert [part["commit"] for part in merged["parts"]] == ["aaa", "bbb"]
    line = _parts_line(merged)
    assert "2 parts" in line and "a, x-base at commit aaa (" in line and "x-base, d at commit bbb" in line
    # a part cut short (no "finished") names only the scenarios it has results for
    first["scenarios"].append("d")
    del first["finished"]
    line = _parts_line(merge_documents([first, second]))
    assert "a, x-base at commit aaa" in line and "interrupted" in line
    assert merge_documents([first]) is first and _parts_line(first) == ""


def test_merge_refuses_parts_from_different_machines():
    with pytest.raises(ValueError):
        merge_documents([_document(1.0, "a", ["a"], []), _document(2.0, "b", ["d"], [], cores=8)])


def test_http_bytes_are_split_by_kind_and_old_runs_without_traces_still_count():
    from bench.pilotbench.report import _sent
    from bench.pilotbench.scenarios import _http

    http = _http([{"method": "getJob", "bytes_in": 150, "bytes_out": 1500},
                  {"method": "updateJob", "bytes_in": 255, "bytes_out": 36},
                  {"method": "schedconfig", "bytes_in": 0, "bytes_out": 1116},
                  {"method": "traces", "bytes_in": 2516, "bytes_out": 7}])
    assert http["bytes_in"] == 2921
    assert http["bytes_in_by_kind"] == {"panda": 405, "info": 0, "traces": 2516}
    assert http["bytes_in_by_method"]["updateJob"] == 255
    assert _sent({"http": http}, ("panda", "info")) == 405
    assert _sent({"http": http}, ("traces",)) == 2516
    # a reference's run of 2026-12-07 (no split recorded, no trace sent): everything went to the PanDA server
    old = {"http": {"traces": 0, "bytes_in": 1872}}
    assert _sent(old, ("panda", "info")) == 1872 and _sent(old, ("traces",)) == 0
    # ours of the same day sent a trace: the split is unknown, not guessed
    assert _sent({"http": {"traces": 1, "bytes_in": 4308}}, ("panda", "info")) is None
