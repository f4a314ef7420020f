"""/proc readers of the monitor: tree walk without a full scan, memory/io/net parsing, the summary."""

import os
import subprocess
import sys

from pilot.util import memorymonitor, processes
from pilot.util.memorymonitor import MemoryMonitor, read_io, read_memory, read_net


def test_tree_table_reads_only_the_tree():
    proc = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    try:
        import time

        deadline = time.monotonic() + 5
        while len(processes.tree_table(proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        table = processes.tree_table(proc.pid)
        assert len(table) == 3 and proc.pid in table
        assert set(table) == {proc.pid} | set(processes.descendants(proc.pid))
        assert processes.children(os.getpid()) is not None and proc.pid in processes.children(os.getpid())
    finally:
        processes.kill_process_tree(proc.pid, grace=1.0)
        proc.wait()


def test_tree_table_falls_back_to_a_full_scan(monkeypatch):
    monkeypatch.setattr(processes, "children", lambda pid: None)
    table = processes.tree_table(os.getpid())
    assert os.getpid() in table
    assert processes.tree_table(2 ** 22 + 12345) == {}


def test_read_memory_io_of_this_process():
    mem = read_memory(os.getpid())
    assert mem["rss"] > 1000 and mem["pss"] > 0 and mem["vmem"] >= mem["rss"] and mem["threads"] >= 1
    assert read_io(os.getpid()).get("rchar", 0) > 0
    assert read_memory(2 ** 22 + 12345) == {}


def test_read_net_skips_loopback(monkeypatch):
    text = ("Inter-|   Receive                                                |  Transmit\n"
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop\n"
            "    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n"
            "  eth0: 5000 50 0 0 0 0 0 0 7000 70 0 0 0 0 0 0\n"
            "  eth1: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n")
    monkeypatch.setattr(memorymonitor, "_read", lambda path: text)
    assert read_net(1) == {"rx_bytes": 5001, "rx_packets": 52, "tx_bytes": 7003, "tx_packets": 74}


def test_summary_of_samples(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(20)"])
    try:
        monitor = MemoryMonitor(proc.pid, str(tmp_path), include_root=True)
        assert monitor.summary() == {}
        first, second = monitor.sample(), monitor.sample()
        assert first["nprocs"] == second["nprocs"] == 1
        summary = monitor.summary()
        assert summary["Max"]["rss"] == max(first["rss"], second["rss"])
        assert summary["Avg"]["rss"] == round((first["rss"] + second["rss"]) / 2)
        assert (tmp_path / "memory_monitor_summary.json").exists()
        assert len((tmp_path / "memory_monitor_output.txt").read_text().splitlines()) == 3
    finally:
        proc.kill()
        proc.wait()
