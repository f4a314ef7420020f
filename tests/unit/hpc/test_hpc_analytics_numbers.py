"""Analytics checked against fits worked out by hand, and the memory-leak estimate that uses them.

Hand computation for x = 1, 2, 3, 4 and y = 2, 3, 5, 6:
mean x = 2.5, mean y = 4; Sxx = 2.25 + 0.25 + 0.25 + 2.25 = 5;
Sxy = (-1.5)(-2) + (-0.5)(-1) + (0.5)(1) + (1.5)(2) = 3 + 0.5 + 0.5 + 3 = 7;
slope = 7 / 5 = 1.4; intersect = 4 - 1.4 * 2.5 = 0.5; fitted = 1.9, 3.3, 4.7, 6.1;
chi2 = (0.1/1.9)^2 + (0.3/3.3)^2 + (0.3/4.7)^2 + (0.1/6.1)^2
     = 0.0027700831 + 0.0082644628 + 0.0040742417 + 0.0002687450 = 0.0153775326.
"""

import pytest

from pilot.api.analytics import Analytics
from pilot.control.monitoring.memory import update_leak
from pilot.info.jobdata import JobData


def test_fit_against_hand_computed_numbers():
    client = Analytics()
    fit = client.fit([1, 2, 3, 4], [2, 3, 5, 6])
    assert fit.slope() == pytest.approx(1.4, abs=1e-12)
    assert fit.intersect() == pytest.approx(0.5, abs=1e-12)
    assert fit.chi2() == pytest.approx(0.0153775326, abs=1e-9)
    assert client.slope() == pytest.approx(1.4) and client.intersect() == pytest.approx(0.5)
    assert client.chi2() == pytest.approx(0.0153775326, abs=1e-9)
    assert fit.value(10) == pytest.approx(14.5)


def test_negative_slope_by_hand():
    # x = 0, 10, 20; y = 100, 80, 66: mean x 10, mean y 82, Sxx 200, Sxy = -10*18 + 0 + 10*(-16) = -340
    fit = Analytics().fit([0, 10, 20], [100, 80, 66])
    assert fit.slope() == pytest.approx(-1.7)
    assert fit.intersect() == pytest.approx(99.0)  # 82 + 1.7 * 10
    # fitted 99, 82, 65: chi2 = (1/99)^2 + (2/82)^2 + (1/65)^2
    assert fit.chi2() == pytest.approx((1 / 99) ** 2 + (2 / 82) ** 2 + (1 / 65) ** 2)


def _prmon_file(path, rows):
    header = "Time\tnprocs\tnthreads\twtime\tstime\tutime\tpss\trss\tswap\tvmem\n"
    path.write_text(header + "".join(f"{t}\t1\t1\t{t - rows[0][0]}\t0\t0\t{pss}\t{pss}\t{swap}\t{pss}\n"
                                     for t, pss, swap in rows))


def test_get_table_and_fitted_data_on_a_known_leak(tmp_path):
    # pss + swap grows by exactly 12 kB per second from 1000 kB: slope 12.00, chi2 0.00, intersect at Time 0
    rows = [(1000 + 10 * i, 1000 + 120 * i - (i % 2) * 50, (i % 2) * 50) for i in range(20)]
    path = tmp_path / "memory_monitor_output.txt"
    _prmon_file(path, rows)
    client = Analytics()
    table = client.get_table(str(path))
    assert table["Time"][:2] == [1000.0, 1010.0] and len(table["pss"]) == 20
    fitted = client.get_fitted_data(str(path), x_name="Time", y_name="pss+swap")
    assert fitted == {"slope": "12.00", "chi2": "0.00", "intersect": "-11000.00"}


def test_leak_estimate_puts_slope_and_chi2_in_the_job_metrics(tmp_path):
    # 5 head and 2 tail samples are dropped (tails=False); the middle grows 4 kB/s
    rows = [(t, 5000 + 4 * t, 0) for t in range(0, 300, 10)]
    rows[0] = (0, 1000, 0)  # start-up: dropped before the fit
    _prmon_file(tmp_path / "memory_monitor_output.txt", rows)
    job = JobData(jobid="1", workdir=str(tmp_path))
    update_leak(job)
    assert job.extra_metrics["leak"] == "4.00"
    assert job.extra_metrics["chi2"] == "0.00"
