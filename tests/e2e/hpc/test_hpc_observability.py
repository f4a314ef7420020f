"""A whole pilot run with its own metrics file (Prometheus text format, read by prometheus_client's
parser as a node exporter's textfile collector would) and its log streamed live to a TCP collector."""

import os

import pytest

from pilot.devserver.samples import sample_job
from tests.hpcsite import Listener

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # pragma: no cover - CI installs it (requirements-test.txt)
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("prometheus_client is not installed", allow_module_level=True)


def samples(text):
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "pilot_pid"}
            found[(sample.name, tuple(sorted(labels.items())))] = sample.value
    return found


def test_pilot_metrics_file_and_live_log(devserver, start_pilot, tmp_path):
    collector = Listener().start()
    metrics_dir = tmp_path / "textfile"
    try:
        job = sample_job(devserver.storage_dir)
        pandaid = devserver.submit(job)
        run = start_pilot(extra=["--use-realtime-logging", "--realtime-logging-server",
                                 f"127.0.0.1:{collector.port}", "--realtime-logname", "e2e-pilot"],
                          config_text=f"\n[Pilot]\nmetrics_dir: {metrics_dir}\nmetrics_interval: 1\n")
        status = run.wait()
        record = devserver.wait_final(pandaid, timeout=30)
    finally:
        collector.stop()
    assert status == 0 and record["state"] == "finished", run.log_text()[-3000:]

    files = list(metrics_dir.glob("pilot_*.prom"))
    assert len(files) == 1 and not list(metrics_dir.glob(".*"))  # one file, no temporary left
    found = samples(files[0].read_text())

    def value(name, **labels):
        return found[(name, tuple(sorted((k, str(v)) for k, v in labels.items())))]

    assert value("pilot_running") == 0  # the last file of a pilot that ended
    info = [k for k in found if k[0] == "pilot_info"]
    assert info and dict(info[0][1])["queue"] == "DEV_QUEUE" and dict(info[0][1])["workflow"] == "generic"
    assert value("pilot_jobs_completed_total") == 1
    size_in = int(job["fsize"])
    assert value("pilot_transfer_files_total", direction="stage-in", copytool="mv", result="ok") == 1
    assert value("pilot_transfer_bytes_total", direction="stage-in", copytool="mv") == size_in
    assert value("pilot_transfer_files_total", direction="stage-out", copytool="mv", result="ok") == 2
    assert value("pilot_transfer_errors_total", direction="stage-out", copytool="mv") == 0
    assert value("pilot_heartbeat_latency_seconds_count") >= 3  # starting, running, final
    assert value("pilot_server_requests_total", method="getJob") >= 1
    phases = {dict(k[1])["phase"] for k in found if k[0] == "pilot_job_phase_seconds"}
    assert phases == {"getjob", "stagein", "payload", "stageout", "setup"}
    assert ("pilot_job_phase_seconds", (("pandaid", str(pandaid)), ("phase", "payload"))) in found

    messages = [r["message"] for r in collector.records]
    local = (run.main_dir() / "pilotlog.txt").read_text()
    assert any(m.startswith("PanDA pilot") and "starting on queue DEV_QUEUE" in m for m in messages)
    assert any("pilot done" in m for m in messages)
    job_records = [r for r in collector.records if r.get("PandaJobID") == str(pandaid)]
    assert job_records and all(r["logname"] == "e2e-pilot" and r["queue"] == "DEV_QUEUE" for r in job_records)
    streamed_info = [m for m, r in zip(messages, collector.records) if r["level"] in ("INFO", "WARNING", "ERROR")]
    for message in streamed_info[:50]:
        assert message.splitlines()[0] in local  # the local log has every streamed line
