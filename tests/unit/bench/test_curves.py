"""The scaling check of scenario s (bench/pilotbench/curves.py)."""

from bench.pilotbench.curves import growth, markdown


def _p(n, per):
    return {"files": n, "size": 1024, "stagein": per * n, "stagein_plain": 0.0, "stageout": per * n,
            "stageout_plain": 0.0, "stagein_per_file": per, "stageout_per_file": per}


def test_growth_is_per_file_cost_at_10000_over_100():
    curve = [_p(1, 0.5), _p(100, 0.01), _p(10_000, 0.03)]
    assert abs(growth(curve, "stagein_per_file") - 3.0) < 1e-9
    assert growth(curve[:2], "stagein_per_file") is None


def test_the_report_judges_growth_against_2():
    by = [_p(100, 0.01), _p(10_000, 0.015)]
    logs = [{"pilot_wall": 1.0, "tar_wall": 1.0}] * 2
    doc = {"by_files": by, "by_size": [], "log_by_files": logs, "log_by_size": [],
           "growth": {"stagein": 1.5, "stageout": 2.5, "log": None}}
    text = markdown(doc)
    assert "stagein: 1.50 (met)" in text and "stageout: 2.50 (MISSED)" in text and "log: not measured" in text
