"""pilot.api.analytics: least-squares line, chi2, memory-monitor tables (both real formats)."""

from pathlib import Path

import pytest

from pilot.api.analytics import Analytics, Fit, read_table
from pilot.common.exception import NotDefined, NotImplementedFailure, NotSameLength

DATA = Path(__file__).parent / "data"


def test_linear_fit_exact_line():
    client = Analytics()
    x = list(range(10))
    fit = client.fit(x, x)
    assert fit.slope() == 1.0 and isinstance(fit.slope(), float)
    assert fit.intersect() == 0.0 and fit.chi2() == 0.0
    assert client.slope() == 1.0 and client.intersect() == 0.0 and client.chi2() == 0.0
    assert client.fit(x, [-v for v in x]).slope() == -1.0


def test_fit_with_offset_and_noise():
    x = [0, 1, 2, 3, 4]
    y = [1.1, 2.9, 5.2, 6.8, 9.0]
    fit = Fit(x, y)
    assert fit.slope() == pytest.approx(1.97, abs=1e-9)
    assert fit.intersect() == pytest.approx(1.06, abs=1e-9)
    # chi2: sum of squared relative deviations from the line
    expected = sum(((yi - (1.97 * xi + 1.06)) / (1.97 * xi + 1.06)) ** 2 for xi, yi in zip(x, y))
    assert fit.chi2() == pytest.approx(expected)
    assert fit.value(10) == pytest.approx(20.76)


def test_fit_errors():
    client = Analytics()
    with pytest.raises(NotDefined):
        client.slope()
    with pytest.raises(NotSameLength):
        client.fit([1, 2], [1])
    with pytest.raises(NotDefined):
        client.fit([], [])
    with pytest.raises(NotImplementedFailure):
        client.fit([1, 2], [1, 2], model="quadratic")
    vertical = client.fit([3, 3, 3], [1, 2, 3])
    assert vertical.slope() is None and vertical.chi2() is None


def test_prmon_table_and_leak_fit():
    client = Analytics()
    table = client.get_table(str(DATA / "memory_monitor_output-prmon.txt"))
    assert len(table["Time"]) == 60 and table["pss"][1] == 678832.0
    fitted = client.get_fitted_data(str(DATA / "memory_monitor_output-prmon.txt"), tails=False)
    assert float(fitted["slope"]) > 0 and fitted["chi2"] != "" and fitted["intersect"] != ""
    assert fitted["slope"] == f"{float(fitted['slope']):.2f}"


def test_old_memorymonitor_table_with_repeated_tabs():
    client = Analytics()
    table = client.get_table(str(DATA / "memory_monitor_output.txt"))
    assert list(table)[:5] == ["Time", "VMEM", "PSS", "RSS", "Swap"]
    assert len(table["PSS"]) == len(table["Time"]) > 400
    fit = client.fit(table["Time"], table["PSS"])
    assert fit.slope() > 0
    assert float(client.get_fitted_data(str(DATA / "memory_monitor_output.txt"), y_name="PSS+Swap")["slope"]) > 0


def test_fitted_data_needs_enough_points(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("Time\tpss\tswap\n" + "".join(f"{t}\t{100 + t}\t0\n" for t in range(5)))
    assert Analytics().get_fitted_data(str(path)) == {"slope": "", "chi2": "", "intersect": ""}
    assert Analytics().get_fitted_data(str(tmp_path / "missing.txt"))["slope"] == ""
    path.write_text("Time\tpss\tswap\n" + "".join(f"{t}\t{100 + 2 * t}\t1\n" for t in range(10)))
    assert Analytics().get_fitted_data(str(path)) == {"slope": "2.00", "chi2": "0.00", "intersect": "101.00"}


def test_read_table_skips_bad_rows_and_takes_header(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a b\n1 2\nx y\n3\n5 6\n")
    assert read_table(str(path), separator=" ") == {"a": [1.0, 5.0], "b": [2.0, 6.0]}
    assert read_table(str(path), header="p q", separator=" ") == {"p": [1.0, 5.0], "q": [2.0, 6.0]}
    assert read_table(str(path), separator=" ", convert_to_float=False)["a"] == ["1", "x", "5"]
