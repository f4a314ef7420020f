"""Services API pure parts: the benchmark results dictionary, memory fields, resource plug-in loading."""

import json
import types

import pytest

from pilot.api.benchmark import DEFAULT_ADD, PILOT_FIELDS, Benchmark, work_unit, worker
from pilot.api.memorymonitor import MemoryMonitoring, last_sample, update_fields
from pilot.api.services import Services
from pilot.common.exception import PilotException
from pilot.resource import FUNCTIONS, load_resource


def reports():
    return [{"units": 100, "wall_seconds": 2.0, "cpu_seconds": 1.8, "score": 50.0, "checksum": 1},
            {"units": 80, "wall_seconds": 2.0, "cpu_seconds": 1.6, "score": 40.0, "checksum": 2}]


def test_results_scores_and_pilot_fields():
    job = types.SimpleNamespace(jobid="4711", taskid="12", corecount=2)
    bench = Benchmark(context={"job": job, "queue": "SITE_Q"}, add_fields=DEFAULT_ADD, remove_fields=["processes"])
    assert bench.cores == 2  # the payload's cores
    results = bench.build(reports(), wall=2.5)
    assert results["score"] == 90.0 and results["score_per_core"] == 45.0 and results["valid"] is True
    assert results["cpu_seconds"] == 3.4 and results["cpu_efficiency"] == pytest.approx(0.85)
    assert results["PandaID"] == "4711" and results["taskID"] == "12" and results["queue"] == "SITE_Q"
    assert {"timestamp", "hostname", "cpu_model", "pilot_version"} <= set(results)
    assert "processes" not in results
    json.dumps(results)  # postable as it is


def test_fields_added_and_removed_are_configurable(caplog):
    bench = Benchmark(cores=1, add_fields="hostname, mpi_rank, no_such_field", remove_fields="cpu_seconds,score",
                      context={"mpi_rank": 0})
    results = bench.build(reports()[:1], wall=2.0)
    assert "hostname" in results and results["mpi_rank"] == 0
    assert "score" not in results and "cpu_seconds" not in results and "processes" in results
    assert "timestamp" not in results and "PandaID" not in results
    assert "unknown pilot field 'no_such_field'" in caplog.text
    failed = bench.build([{"error": "the worker failed (1)"}], wall=1.0)
    assert failed["valid"] is False and failed["score_per_core"] == 0.0 and failed["errors"]
    assert set(DEFAULT_ADD) <= set(PILOT_FIELDS)


def test_work_unit_is_deterministic_and_worker_counts():
    assert work_unit(7) == work_unit(7) != work_unit(8)
    result = worker(0.05)
    assert result["units"] >= 5 and result["wall_seconds"] >= 0.05 and result["score"] > 0


def test_post_needs_a_url():
    with pytest.raises(ValueError):
        Benchmark(cores=1, url="").post()


def test_update_fields_and_last_sample(tmp_path):
    summary = {"Max": {"rss": 10, "pss": 8, "vmem": 20, "swap": 0, "rchar": 100, "wchar": 5, "read_bytes": 0,
                       "write_bytes": 4096},
               "Avg": {"rss": 7, "pss": 6, "vmem": 15, "swap": 0, "rchar": 3, "wchar": 1, "read_bytes": 0,
                       "write_bytes": 40}}
    fields = update_fields(summary)
    assert fields["maxRSS"] == 10 and fields["avgPSS"] == 6 and fields["totWBYTES"] == 4096
    assert fields["rateRCHAR"] == 3 and len(fields) == 16
    path = tmp_path / "memory_monitor_output.txt"
    path.write_text("Time\tpss\trss\n1\t5\t6\n2\t7\t8\n")
    assert last_sample(str(path)) == {"Time": 2, "pss": 7, "rss": 8}
    assert last_sample(str(tmp_path / "missing")) == {}


def test_memory_monitoring_needs_a_pid_and_keeps_pilot3_names(tmp_path):
    monitor = MemoryMonitoring(workdir=str(tmp_path), custom="x")
    assert monitor.custom == "x" and monitor.get_command() == ""
    assert monitor.get_filename() == str(tmp_path / "memory_monitor_output.txt")
    with pytest.raises(ValueError):
        monitor.start()
    assert isinstance(monitor, Services) and monitor.get_results() == {}


def test_resource_plugins():
    generic = load_resource("")
    assert generic.name == "generic" and all(callable(getattr(generic, fn)) for fn in FUNCTIONS)
    assert generic.get_setup() == [] and generic.command_fix("a b", "/x") == "a b"
    with pytest.raises(PilotException):
        load_resource("no_such_resource")
    with pytest.raises(PilotException):
        load_resource("../etc")
