"""The Harvester-style Data API scenario: its file list, checksum check and summary (bench/pilotbench/dataapi.py)."""

import zlib

from bench.pilotbench.dataapi import markdown, spec, summary, verify
from bench.pilotbench.jobs import InputFile


def _file(tmp_path, name, data):
    return InputFile(name, len(data), f"{zlib.adler32(data) & 0xffffffff:08x}", str(tmp_path / name))


def test_spec_has_harvesters_attributes_for_every_file(tmp_path):
    files = [_file(tmp_path, f"f{i}", b"x") for i in range(4)]
    s = spec(files, "bxscope", tmp_path, threads=3)
    assert s["threads"] == 3 and len(s["files"]) == 4
    assert set(s["files"][0]) == {"scope", "name", "dataset", "ddmendpoint", "guid", "workdir"}
    assert s["files"][0]["ddmendpoint"] == "PILOT_XRD" and s["files"][0]["workdir"] == str(tmp_path)


def test_verify_counts_good_bad_and_missing_files(tmp_path):
    good, bad, gone = _file(tmp_path, "a", b"aaa"), _file(tmp_path, "b", b"bbb"), _file(tmp_path, "c", b"c")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a").write_bytes(b"aaa")
    (tmp_path / "b").write_bytes(b"bbX")
    assert verify(tmp_path, [good, bad, gone]) == {"verified": 1, "bad": 1, "missing": 1}


def test_summary_needs_the_ratio_and_every_checksum():
    runs = [{"pilot": "pilot3", "transfer_s": 10.0, "process_wall": 11.0, "verified": 5, "files": 5},
            {"pilot": "ours", "transfer_s": 1.5, "process_wall": 2.0, "verified": 5, "files": 5}]
    s = summary(runs)
    assert s["ratio"] == 0.15 and s["target_met"]
    runs[1]["verified"] = 4
    assert not summary(runs)["target_met"]
    doc = {"files": 5, "size": 10, "rounds": 1, "summary": summary(runs)}
    assert "MISSED" in markdown(doc)
