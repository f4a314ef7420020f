"""The init (PID 1) of a security test's PID namespace: starts one pilot, reaps, reports, stays.

Run as root by ``unshare -p -f --mount-proc --kill-child=SIGKILL python -m tests.security.nsinit``
(see :mod:`tests.security.harness`). It

- optionally makes the test interpreter reachable for an unprivileged user (a private tmpfs over a
  mode-0700 ancestor such as ``/root``, in this namespace's own mount namespace only);
- starts the pilot command, as ``--user`` when given (uid, gid, no supplementary groups);
- reaps every process that ends in the namespace (orphans come to PID 1), and prints
  ``PILOT_EXIT <status>`` on stdout when the pilot's own process ends;
- lives on until its stdin reaches end of file, so the test can look at what is left in the
  namespace; when it exits the kernel kills every process still in the namespace.

A payload that signals every process (``kill -1``) reaches only this namespace: the pilot and
this init (which has no handler for the usual signals and so ignores them) at most.
"""

from __future__ import annotations

import argparse
import os
import pwd
import signal
import stat
import subprocess
import sys
import tempfile
import threading


def _reachable_interpreter(uid: int) -> None:
    """Cover the first ancestor of the interpreter the user cannot traverse with a tmpfs holding only its path."""
    real = os.path.realpath(sys.executable)
    parts = real.split(os.sep)[1:-1]
    path = ""
    for index, name in enumerate(parts):
        path = f"{path}/{name}"
        mode = os.stat(path).st_mode
        if mode & stat.S_IXOTH:
            continue
        # ``parent/name`` is closed to others: keep its child on our path, cover it with a tmpfs
        if index + 1 >= len(parts):
            raise SystemExit(f"nsinit: the interpreter's own directory {path} is closed to uid {uid}")
        child = parts[index + 1]
        keep = tempfile.mkdtemp(prefix="nsinit-keep-")
        subprocess.run(["mount", "--bind", f"{path}/{child}", keep], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=64k", "tmpfs", path], check=True)
        os.mkdir(f"{path}/{child}", 0o755)
        subprocess.run(["mount", "--move", keep, f"{path}/{child}"], check=True)
        os.rmdir(keep)
        return


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user", default="")
    parser.add_argument("--cwd", default=None)
    parser.add_argument("--log", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    kwargs: dict = {}
    if args.user:
        entry = pwd.getpwnam(args.user)
        _reachable_interpreter(entry.pw_uid)
        kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    # a handler, not SIG_IGN: the pilot must not inherit an ignored SIGINT (handlers reset at exec)
    signal.signal(signal.SIGINT, lambda *_: None)
    # stdin EOF (the test closed its end, or died): leave, and the kernel empties the namespace
    threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)), daemon=True).start()
    with open(args.log, "ab") as log:
        pilot = subprocess.Popen(command, cwd=args.cwd, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, **kwargs)
    sys.stdout.write(f"PILOT_STARTED {pilot.pid}\n")
    sys.stdout.flush()
    reported = False
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid == pilot.pid and not reported:
            reported = True
            pilot.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") \
                else (os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status))
            sys.stdout.write(f"PILOT_EXIT {pilot.returncode}\n")
            sys.stdout.flush()
    threading.Event().wait()  # until stdin closes
    return 0


if __name__ == "__main__":
    sys.exit(main())
