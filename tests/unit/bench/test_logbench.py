"""The log-archive scenario's arithmetic and its link check (bench/pilotbench/logbench.py)."""

import subprocess
import tarfile

from bench.pilotbench import logbench
from bench.pilotbench.logbench import (OUTSIDE_LINK, escaped, flatness, make_workdir, markdown, measure,
                                       summary)


def test_summary_is_medians_and_the_ratio_to_tar():
    runs = [{"pilot": {"wall": 1.0}, "tar": {"wall": 1.0}}, {"pilot": {"wall": 3.0}, "tar": {"wall": 2.0}},
            {"pilot": {"wall": 2.0}, "tar": {"wall": 4.0}}]
    s = summary(runs, 100)
    assert s["pilot_wall"] == 2.0 and s["tar_wall"] == 2.0 and s["ratio"] == 1.0
    assert s["pilot_per_file"] == 0.02 and s["overhead_per_file"] == 0.0 and s["escaped"] is False


def test_flatness_is_per_file_cost_at_10000_over_100():
    curve = [{"files": 100, "pilot_per_file": 0.001}, {"files": 10_000, "pilot_per_file": 0.0025}]
    assert flatness(curve) == 2.5
    assert flatness(curve[:1]) is None


def test_the_work_dir_has_the_files_and_both_links(tmp_path):
    work = make_workdir(tmp_path / "w", 150, 1000)
    files = [p for p in work.rglob("*.dat")]
    assert len(files) == 150 and all(p.stat().st_size == 1000 for p in files)
    assert len({p.parent for p in files}) == 2
    assert (work / OUTSIDE_LINK).is_symlink() and not str((work / OUTSIDE_LINK).resolve()).startswith(str(work))


def test_the_link_check_sees_an_archive_that_followed_the_outside_link(tmp_path):
    work = make_workdir(tmp_path / "w", 3, 100)
    bad = tmp_path / "bad.tgz"
    subprocess.run(["tar", "-h", "-czf", str(bad), "-C", str(work.parent), work.name], check=True)
    assert escaped(bad)
    good = tmp_path / "good.tgz"
    with tarfile.open(good, "w:gz") as tar:
        tar.add(work / "d000", arcname="workdir/d000")
    assert not escaped(good)


def test_one_smoke_point_runs_both_tools_and_the_pilot_leaves_the_outside_link_out(tmp_path):
    point = measure(tmp_path / "root", 20, 2048, rounds=1)
    run = point["runs"][0]
    assert run["pilot"]["members"] >= 20 and run["pilot"]["size"] > 0 and run["tar"]["size"] > 0
    assert point["escaped"] is False and OUTSIDE_LINK in run["pilot"]["skipped"]
    doc = {"target": point, "curve_files": [point], "curve_sizes": [], "flatness_100_to_10000": None}
    assert "never: met" in markdown(doc)


def test_large_files_are_written_in_chunks(tmp_path, monkeypatch):
    # a 1 GB file has more random bits than getrandbits takes at once: the work dir writes it chunk by chunk
    monkeypatch.setattr(logbench, "NOISE_CHUNK", 1000)
    work = logbench.make_workdir(tmp_path / "w", 2, 4567)
    data = (work / "d000" / "f00001.dat").read_bytes()
    assert len(data) == 4567
    assert data[-100:].decode().count("INFO payload") >= 1  # the text half is there
