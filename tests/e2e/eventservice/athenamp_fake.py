"""An AthenaMP-shaped fake payload: the event-range side of AthenaMP's EvtRangeScatterer, over a pyzmq DEALER.

Like AthenaMP it learns the channel from ``--preExec '...jps.AthenaMPFlags.EventRangeChannel="<name>"'``
(yampl "local": ``ipc:///tmp/zmq_<name>``), sends ``Ready for events``, cuts the reply at the first
newline, stops only on an exact ``No more events``, and does not parse JSON: it strips ``[{`` and
``}]``, splits on ``,`` and on the first ``:`` of each piece, trims blanks and quotes, and needs
``eventRangeID``, ``startEvent``, ``lastEvent`` and ``GUID`` (``ERR_ATHENAMP_PARSE "<range>": Wrong
format`` / ``Wrong values of range fields`` otherwise). Each good range becomes one output file
``athenamp.out.<rangeID>`` (a line per event) reported as ``<abs path>,ID:<id>,CPU:<s>,WALL:<s>``.

Options: ``--fail ID`` (answer ``ERR_ATHENAMP_PROCESS ID: Failed to process event range``),
``--crash-at N`` (SIGKILL itself while writing the N-th range), ``--never-ready`` (connect, then never
ask), ``--connections K`` (K DEALERs, as K scatterers), ``--log FILE`` (every message received, as
JSON-escaped text, one a line).
"""

import argparse
import json
import os
import re
import signal
import sys
import threading
import time

import zmq

READY = b"Ready for events"
STOP = "No more events"
REQUIRED = ("eventRangeID", "startEvent", "lastEvent", "GUID")


def channel_name(argv):
    found = re.findall(r'EventRangeChannel="([^"]+)"', " ".join(argv))
    if not found:
        sys.exit("no EventRangeChannel in --preExec")
    return found[0]


def trim(text):
    text = text.strip(" ")
    if text.startswith("u'") and text.endswith("'"):
        return text[2:-1]
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return text[1:-1]
    return text


def parse(message):
    """(fields, error message or None), as EvtRangeScatterer does it."""
    text = message
    if text.startswith("[{"):
        text = text[2:]
    if text.endswith("}]"):
        text = text[:-2]
    fields = {}
    for piece in text.split(","):
        key, _, value = piece.partition(":") if ":" in piece else (piece, "", piece)
        fields[trim(key)] = trim(value)
    if any(key not in fields for key in REQUIRED):
        return fields, f'ERR_ATHENAMP_PARSE "{text}": Wrong format'
    try:
        first, last = int(fields["startEvent"]), int(fields["lastEvent"])
    except ValueError:
        first, last = 0, -1
    if not fields["eventRangeID"] or not fields["GUID"] or last < first:
        return fields, f'ERR_ATHENAMP_PARSE "{text}": Wrong values of range fields'
    return fields, None


class Scatterer:
    def __init__(self, opts, endpoint, counter, lock):
        self.opts = opts
        self.endpoint = endpoint
        self.counter = counter
        self.lock = lock

    def log(self, text):
        if self.opts.log:
            with self.lock, open(self.opts.log, "a") as handle:
                handle.write(json.dumps(text) + "\n")

    def run(self, ctx):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 5000)
        sock.connect(self.endpoint)
        try:
            while True:
                sock.send(READY)
                raw = sock.recv().decode("utf-8", errors="replace")
                self.log(raw)
                message = raw.split("\n", 1)[0]
                if message == STOP:
                    return
                fields, error = parse(message)
                if error:
                    sock.send(error.encode())
                    continue
                sock.send(self.process(fields).encode())
        finally:
            sock.close()

    def process(self, fields):
        rid = fields["eventRangeID"]
        with self.lock:
            self.counter[0] += 1
            number = self.counter[0]
        start_wall, start_cpu = time.time(), time.process_time()
        if rid in self.opts.fail:
            return f"ERR_ATHENAMP_PROCESS {rid}: Failed to process event range"
        path = os.path.abspath(f"athenamp.out.{rid}")
        with open(path, "w") as handle:
            for event in range(int(fields["startEvent"]), int(fields["lastEvent"]) + 1):
                handle.write(f"range {rid} event {event} guid {fields['GUID']}\n")
                if number == self.opts.crash_at:
                    handle.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
        if self.opts.delay:
            time.sleep(self.opts.delay)
        cpu, wall = time.process_time() - start_cpu, time.time() - start_wall
        return f"{path},ID:{rid},CPU:{int(round(cpu))},WALL:{int(round(wall))}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fail", action="append", default=[])
    parser.add_argument("--crash-at", type=int, default=0)
    parser.add_argument("--never-ready", action="store_true")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--log", default="")
    parser.add_argument("--preExec", action="append", default=[])
    opts = parser.parse_args()
    endpoint = f"ipc:///tmp/zmq_{channel_name(opts.preExec)}"
    ctx = zmq.Context()
    if opts.never_ready:
        sock = ctx.socket(zmq.DEALER)
        sock.connect(endpoint)
        threading.Event().wait()
    counter, lock = [0], threading.Lock()
    threads = [threading.Thread(target=Scatterer(opts, endpoint, counter, lock).run, args=(ctx,))
               for _ in range(max(1, opts.connections))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ctx.term()
    print(f"AthenaMP fake: {counter[0]} range(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
