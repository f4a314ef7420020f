"""The Services API from plain Python on real processes: memory monitoring of a process tree, the CPU
benchmark with real worker processes, its results POSTed to the dev server's JSON sink."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from pilot.api.benchmark import Benchmark
from pilot.api.memorymonitor import MemoryMonitoring
from pilot.devserver.control import DevServer
from pilot.util.memorymonitor import COLUMNS

MB = 1024 * 1024

TREE = textwrap.dedent("""
    import os, sys, time
    block = b"p" * (40 * 1024 * 1024)          # the parent holds 40 MB
    if os.fork() == 0:
        child = b"c" * (30 * 1024 * 1024)      # the child 30 MB more
        with open(sys.argv[1], "w") as handle:
            handle.write("ready")
        time.sleep(60)
        os._exit(0)
    time.sleep(60)
""")


@pytest.fixture
def tree(tmp_path):
    """A two-process tree (40 MB + 30 MB touched) started in its own session; stopped at the end."""
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", TREE, str(ready)], start_new_session=True)
    deadline = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), "the test tree did not start"
    yield proc
    os.killpg(proc.pid, 9)
    proc.wait()


def test_memory_monitoring_of_any_process_tree(tmp_path, tree):
    workdir = tmp_path / "mon"
    output = workdir / "memory_monitor_output.txt"

    def samples():
        return len(output.read_text().splitlines()) - 1 if output.exists() else 0

    with MemoryMonitoring(pid=tree.pid, workdir=str(workdir), interval=0.2) as monitor:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and samples() < 3:
            time.sleep(0.1)
        current = monitor.current()
        assert monitor.running
    assert not monitor.running
    assert current["nprocs"] == 2
    assert current["rss"] > 65 * 1024  # kB: 40 MB + 30 MB touched
    assert current["pss"] > 0 and current["vmem"] >= current["rss"]
    assert tree.poll() is None  # watched, never signalled
    summary = monitor.summary()
    assert summary["Max"]["rss"] >= current["rss"] and summary["Avg"]["nprocs"] == 2
    fields = monitor.fields()
    assert fields["maxRSS"] == summary["Max"]["rss"] and "avgPSS" in fields
    lines = (workdir / "memory_monitor_output.txt").read_text().splitlines()
    assert lines[0].split("\t") == list(COLUMNS) and len(lines) >= 5
    on_disk = json.loads((workdir / "memory_monitor_summary.json").read_text())
    assert set(on_disk) == {"Max", "Avg"} and on_disk["Max"]["rss"] == summary["Max"]["rss"]
    assert monitor.get_results() == summary


def test_memory_monitoring_ends_with_the_tree(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.6)"], start_new_session=True)
    monitor = MemoryMonitoring(pid=proc.pid, workdir=str(tmp_path), interval=0.1).start()
    proc.wait()
    monitor.stop()
    assert monitor.summary()["Max"]["nprocs"] == 1
    assert monitor.sample() == {}  # the tree is gone


@pytest.fixture(scope="module")
def sink_server(tmp_path_factory):
    with DevServer(tmp_path_factory.mktemp("server"), https=False) as server:
        yield server


def test_benchmark_with_payload_cores_posted_to_the_sink(tmp_path, sink_server):
    class Job:
        jobid, taskid, corecount = "90001", "77", 2

    bench = Benchmark(context={"job": Job(), "queue": "DEV_QUEUE"}, duration=1.0,
                      url=f"{sink_server.url}/sink/benchmarks")
    started = time.monotonic()
    results = bench.run()
    assert time.monotonic() - started < 30
    assert results["ncores"] == 2 and results["valid"] is True and results["score"] > 0
    assert results["PandaID"] == "90001" and results["queue"] == "DEV_QUEUE" and "processes" not in results
    assert 0 < results["cpu_efficiency"] <= 1.5
    path = bench.write(str(tmp_path / "benchmark_results.json"))
    assert json.loads(open(path).read()) == results
    reply = bench.post()
    assert reply["StatusCode"] == 0
    stored = sink_server.sink("benchmarks")
    assert [doc["body"] for doc in stored] == [results]


def test_benchmark_keeps_the_process_details_when_asked(sink_server):
    bench = Benchmark(cores=1, duration=0.3, remove_fields=[], add_fields=["hostname"])
    results = bench.run()
    assert len(results["processes"]) == 1 and results["processes"][0]["units"] > 0
    assert "timestamp" not in results
    bench.post(f"{sink_server.url}/sink/bench2")
    assert sink_server.sink("bench2")[0]["body"]["processes"][0]["units"] == results["processes"][0]["units"]
