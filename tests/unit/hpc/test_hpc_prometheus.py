"""pilot.util.prometheus: the text format, checked with prometheus_client's own parser; atomic files."""

import os
import threading
import types

import pytest

from pilot.info.jobdata import JobData
from pilot.util import prometheus as prom
from pilot.util.https import HttpStats

try:  # a test dependency (requirements-test.txt): the real parser judges our text
    from prometheus_client import parser
except ImportError:  # pragma: no cover - CI installs it
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("prometheus_client is not installed (pip install -r requirements-test.txt)", allow_module_level=True)


def parse(text):
    """{(sample name, frozenset(labels)): value} and {family name: type} through the real parser."""
    samples, types_ = {}, {}
    for family in parser.text_string_to_metric_families(text):
        types_[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, types_


def test_render_escapes_and_parses():
    fam = prom.Family("pilot_test_total", "counter", 'help with "quotes" and \\ backslash')
    fam.add(3, {"path": 'a "b"\\c\nd'})
    gauge = prom.Family("pilot_gauge", "gauge", "a gauge").add(0.25).add(float("inf"), {"x": "1"})
    text = prom.render([fam, gauge, prom.Family("pilot_empty", "gauge", "no samples")], {"pilot_pid": "7"})
    samples, kinds = parse(text)
    assert samples[("pilot_test_total", frozenset({"path": 'a "b"\\c\nd', "pilot_pid": "7"}.items()))] == 3
    assert samples[("pilot_gauge", frozenset({"pilot_pid": "7"}.items()))] == 0.25
    assert samples[("pilot_gauge", frozenset({"pilot_pid": "7", "x": "1"}.items()))] == float("inf")
    assert kinds == {"pilot_test": "counter", "pilot_gauge": "gauge"}
    assert "pilot_empty" not in text
    with pytest.raises(ValueError):
        prom.render([prom.Family("bad-name", "gauge", "x").add(1)])


def test_transfer_store_http_stats_and_jobs():
    metrics = prom.PilotMetrics()
    metrics.observe_transfer("stage-in", "mv", 1000, 2.0, True)
    metrics.observe_transfer("stage-in", "mv", 3000, 2.0, True)
    metrics.observe_transfer("stage-out", "xrdcp", 500, 1.0, False)
    stats = HttpStats(per_method={"updateJob": 4, "getJob": 1}, per_method_seconds={"updateJob": 0.8, "getJob": 0.1},
                      per_method_failures={"updateJob": 1})
    job = JobData(jobid="4242")
    job.memory_summary = {"maxRSS": 2048, "avgPSS": 1000}
    job.cpuconsumptiontime = 12.5
    timing = lambda j, start: "1|2|30|4|5"  # noqa: E731
    text = prom.render(metrics.families() + prom.http_families(stats) + prom.job_families([job], 0.0, timing))
    samples, kinds = parse(text)

    def value(name, **labels):
        return samples[(name, frozenset({k: str(v) for k, v in labels.items()}.items()))]

    assert value("pilot_transfer_files_total", direction="stage-in", copytool="mv", result="ok") == 2
    assert value("pilot_transfer_bytes_total", direction="stage-in", copytool="mv") == 4000
    assert value("pilot_transfer_rate_bytes_per_second", direction="stage-in", copytool="mv") == 1000
    assert value("pilot_transfer_errors_total", direction="stage-out", copytool="xrdcp") == 1
    assert value("pilot_server_requests_total", method="updateJob") == 4
    assert value("pilot_server_request_failures_total", method="updateJob") == 1
    assert value("pilot_heartbeat_latency_seconds_count") == 4
    assert value("pilot_heartbeat_latency_seconds_sum") == pytest.approx(0.8)
    assert kinds["pilot_heartbeat_latency_seconds"] == "summary"
    assert value("pilot_job_phase_seconds", pandaid=4242, phase="payload") == 30
    assert value("pilot_payload_memory_kilobytes", pandaid=4242, kind="rss", stat="max") == 2048
    assert value("pilot_payload_cpu_seconds", pandaid=4242) == 12.5


def test_writer_is_atomic_and_marks_the_end(tmp_path):
    path = tmp_path / "pilot_1.prom"
    writer = prom.MetricsWriter(str(path), lambda: [prom.Family("pilot_x", "gauge", "x").add(1)], interval=0.5)
    writer.start()
    seen = []
    stop = threading.Event()

    def reader():  # every read of the file parses: never half a file
        while not stop.is_set():
            if path.exists():
                seen.append(parse(path.read_text())[0])

    thread = threading.Thread(target=reader)
    thread.start()
    stop.wait(1.2)
    stop.set()
    thread.join()
    writer.close()
    samples, _ = parse(path.read_text())
    pid = str(os.getpid())
    assert samples[("pilot_running", frozenset({"pilot_pid": pid}.items()))] == 0
    assert writer.writes >= 3 and seen and all(("pilot_x", frozenset({"pilot_pid": pid}.items())) in s for s in seen)
    assert [p.name for p in tmp_path.iterdir()] == ["pilot_1.prom"]  # no temporary file left


def test_remove_stale_only_touches_files_of_pilots_that_are_gone(tmp_path):
    gone = tmp_path / "pilot_999999999.prom"
    mine = tmp_path / f"pilot_{os.getpid()}.prom"
    other = tmp_path / "node_exporter_other.prom"
    for path in (gone, mine, other):
        path.write_text("x 1\n")
        os.utime(path, (0, 0))
    assert prom.remove_stale(str(tmp_path), keep=3600) == [str(gone)]
    assert mine.exists() and other.exists()


def test_start_metrics_off():
    from pilot.util.config import config

    try:
        config.set("Pilot", "metrics_dir", "off")
        assert isinstance(prom.start_metrics(types.SimpleNamespace()), prom._Null)
    finally:
        config.clear_overrides()
