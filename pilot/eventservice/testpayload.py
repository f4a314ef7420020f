"""A small event-service payload for tests and demos: it speaks the pilot's payload channel.

``python testpayload.py [options]`` (or ``python -m pilot.eventservice.testpayload``) connects a
DEALER (the standard-library ZMTP client of ``zmtp.py``) to the channel named in
``PILOT_EVENTRANGECHANNEL`` (``ipc:///tmp/zmq_<name>``), asks for ranges (``Ready for events``), "processes"
each range by writing one output file ``<prefix>.<rangeID>`` in the current directory (a line per
event, naming the input file and, when the input is in the directory, its size and adler32), and
reports ``<path>,ID:<rangeID>,CPU:<n>,WALL:<n>`` -- or ``ERR_... <rangeID>: <text>`` for the ranges
it is told to fail -- until it gets ``No more events``.

``python testpayload.py merge @<list file> --output <file>`` concatenates the files named in a list
file (an ES merge job's ``writeToFile`` list; a first line starting with ``--`` is the job option).

Only the standard library is used, so the file also runs outside the pilot's tree.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
import zlib

try:
    from pilot.eventservice.zmtp import DealerClient
except ImportError:  # run as a plain file next to zmtp.py
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from zmtp import DealerClient  # type: ignore[no-redef]  # the same module, from its file

READY = "Ready for events"
NO_MORE_EVENTS = "No more events"


class ChannelClient:
    """The payload side: ranges asked for and results reported over one DEALER connection."""

    def __init__(self, name: str = "") -> None:
        name = name or os.environ.get("PILOT_EVENTRANGECHANNEL", "")
        name = name or "".join(re.findall(r'EventRangeChannel="([^"]+)"', " ".join(sys.argv))[:1])
        if not name:
            raise ValueError("no event range channel: set PILOT_EVENTRANGECHANNEL")
        self.dealer = DealerClient(f"/tmp/zmq_{name}")

    def request_ranges(self) -> list | None:
        """Send ``Ready for events``; return the ranges, or None for ``No more events``."""
        self.dealer.send(READY)
        reply = self.dealer.receive()
        if reply == NO_MORE_EVENTS:
            return None
        ranges = json.loads(reply)
        return ranges if isinstance(ranges, list) else [ranges]

    def report_output(self, path: str, range_id: str, cpu: float, wall: float) -> None:
        self.dealer.send(f"{path},ID:{range_id},CPU:{int(round(cpu))},WALL:{int(round(wall))}")

    def report_error(self, range_id: str, text: str, kind: str = "ERR_TE_RANGE") -> None:
        self.dealer.send(f"{kind} {range_id}: {text}")

    def __enter__(self) -> "ChannelClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.dealer.close()


def _adler32(path: str) -> str:
    value = 1
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            value = zlib.adler32(block, value)
    return f"{value & 0xFFFFFFFF:08x}"


def process_range(event_range: dict, prefix: str) -> str:
    """Write the output of one range; return its absolute path."""
    range_id = str(event_range["eventRangeID"])
    lfn = str(event_range.get("LFN", ""))
    source = f"{lfn} guid {event_range.get('GUID', '')}"
    if lfn and os.path.isfile(lfn):
        source += f" size {os.path.getsize(lfn)} adler32 {_adler32(lfn)}"
    first, last = int(event_range.get("startEvent", 0)), int(event_range.get("lastEvent", 0))
    path = os.path.abspath(f"{prefix}.{range_id}")
    with open(path + ".part", "w") as handle:
        for event in range(first, last + 1):
            handle.write(f"range {range_id} event {event} from {source}\n")
    os.replace(path + ".part", path)
    return path


class Worker:
    """One channel connection (one AthenaMP worker)."""

    def __init__(self, options: argparse.Namespace, counter: list, lock: threading.Lock) -> None:
        self.options = options
        self.counter = counter
        self.lock = lock

    def run(self) -> None:
        opts = self.options
        with ChannelClient() as channel:
            while True:
                ranges = channel.request_ranges()
                if ranges is None:
                    return
                for event_range in ranges:
                    self.handle(channel, event_range)
                    with self.lock:
                        self.counter[0] += 1
                        done = self.counter[0]
                    if opts.stop_after and done >= opts.stop_after:
                        os._exit(opts.exit_code)

    def handle(self, channel: ChannelClient, event_range: dict) -> None:
        opts = self.options
        range_id = str(event_range["eventRangeID"])
        start_wall, start_cpu = time.time(), time.process_time()
        if opts.delay:
            time.sleep(opts.delay)
        if range_id in opts.fatal:
            channel.report_error(range_id, "simulated fatal failure", kind="ERR_TE_FATAL")
            return
        if range_id in opts.fail:
            channel.report_error(range_id, "simulated failure", kind="ERR_TE_RANGE")
            return
        path = process_range(event_range, opts.prefix)
        channel.report_output(path, range_id, time.process_time() - start_cpu, time.time() - start_wall)


def run_process(opts: argparse.Namespace) -> int:
    if opts.pid_file:
        with open(opts.pid_file, "w") as handle:
            handle.write(f"{os.getpid()}\n")
    counter, lock = [0], threading.Lock()
    threads = [threading.Thread(target=Worker(opts, counter, lock).run) for _ in range(max(1, opts.workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if opts.ignore_no_more_events:
        threading.Event().wait()
    with open("jobReport.json", "w") as handle:
        json.dump({"exitCode": opts.exit_code, "exitMsg": "OK" if not opts.exit_code else "failed",
                   "ranges": counter[0]}, handle)
    print(f"processed {counter[0]} range(s)")
    return opts.exit_code


def run_merge(opts: argparse.Namespace) -> int:
    listing = opts.inputs[1:] if opts.inputs.startswith("@") else opts.inputs
    with open(listing) as handle:
        names = [line.strip() for line in handle if line.strip() and not line.startswith("--")]
    missing = [name for name in names if not os.path.isfile(name)]
    if missing:
        print(f"missing merge inputs: {', '.join(missing)}", file=sys.stderr)
        return 2
    with open(opts.output, "wb") as out:
        for name in names:
            with open(name, "rb") as handle:
                out.write(handle.read())
    print(f"merged {len(names)} file(s) into {opts.output}")
    return 0


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="testpayload", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    merge = sub.add_parser("merge", help="concatenate the files of a merge input list")
    merge.add_argument("inputs", help="@<list file> (or the list file)")
    merge.add_argument("--output", required=True)
    parser.add_argument("--prefix", default="testpayload.out", help="output file prefix")
    parser.add_argument("--fail", action="append", default=[], help="range id to report as failed")
    parser.add_argument("--fatal", action="append", default=[], help="range id to report as fatal")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds spent per range")
    parser.add_argument("--workers", type=int, default=1, help="parallel channel connections")
    parser.add_argument("--stop-after", type=int, default=0, help="exit after this many ranges")
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--ignore-no-more-events", action="store_true", help="hang after 'No more events'")
    parser.add_argument("--pid-file", default="")
    parser.add_argument("--preExec", default="", help="AthenaMP's flags; the channel name is read from it")
    opts = parser.parse_args(argv)
    return run_merge(opts) if opts.mode == "merge" else run_process(opts)


if __name__ == "__main__":
    sys.exit(main())
