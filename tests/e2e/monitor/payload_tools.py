"""Small payloads for the monitor's end-to-end tests (run by the pilot as ``python3 payload_tools.py <what> ...``).

hog MB SECONDS            hold MB of touched memory, then sleep
grow STEPS MB INTERVAL    add MB of touched memory every INTERVAL seconds, STEPS times
burn SECONDS              use SECONDS of CPU time
session-daemon FILE       fork a child in a new session that writes its pid to FILE and sleeps
"""

import os
import sys
import time

MB = 1024 * 1024


def main(argv):
    what = argv[0]
    if what == "hog":
        block = b"x" * (int(argv[1]) * MB)
        time.sleep(float(argv[2]))
        return len(block) and 0
    if what == "grow":
        blocks = []
        for i in range(int(argv[1])):
            blocks.append(bytes([i % 256]) * (int(argv[2]) * MB))
            time.sleep(float(argv[3]))
        return 0
    if what == "burn":
        start = time.process_time()
        while time.process_time() - start < float(argv[1]):
            pass
        return 0
    if what == "session-daemon":
        if os.fork() == 0:
            os.setsid()
            with open(argv[1], "w") as handle:
                handle.write(str(os.getpid()))
            time.sleep(300)
            os._exit(0)
        return 0
    raise SystemExit(f"unknown payload {what!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
