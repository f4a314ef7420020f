"""The README demo: one real job end to end on this machine.

Starts the bundled dev server (HTTP and HTTPS on 127.0.0.1), creates a sample job whose input file
lies on a local storage directory, runs the pilot against the server over HTTPS, and prints the
job's final record: state, pilotTiming and the outputs with their checksums, checked against the
files on storage.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pilot.devserver.control import DevServer  # noqa: E402
from pilot.devserver.samples import sample_job  # noqa: E402


def storage_path(storage: Path, scope: str, lfn: str) -> Path:
    digest = hashlib.md5(f"{scope}:{lfn}".encode()).hexdigest()
    return storage / scope.replace(".", "/") / digest[0:2] / digest[2:4] / lfn


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="where to keep the server state, storage and pilot work dir")
    args = parser.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="pilot-demo-")).resolve()
    base.mkdir(parents=True, exist_ok=True)
    print(f"demo directory: {base}")
    with DevServer(base / "server", https=True) as server:
        job = sample_job(server.storage_dir)
        pandaid = server.submit(job)
        print(f"dev server at {server.https_url} (CA {server.cacert}); submitted job {pandaid}")
        host, port = server.https_url.rsplit(":", 1)
        work = base / "pilot"
        work.mkdir(exist_ok=True)
        cmd = [sys.executable, str(REPO / "pilot.py"), "-q", "DEV_QUEUE", "--pilot-user", "generic",
               "--url", host, "-p", port, "--cacert", str(server.cacert), "-a", str(work),
               "--queuedata-url", f"{server.url}/queuedata/{{pandaqueue}}.json",
               "--storagedata-url", f"{server.url}/storagedata.json", "-x", "1"]
        cfg = work / "demo.cfg"
        cfg.write_text(f"[Rucio]\nurl: {server.url}/traces/\n")  # trace reports go to the dev server's sink
        cmd += ["--config", str(cfg)]
        print("running:", " ".join(cmd))
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(work / "pilot.stderr", "wb") as log:
            status = subprocess.call(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env)
        record = server.wait_final(pandaid, timeout=60)
        raw = server.updates(pandaid)[-1]["fields"]
        traces = server.traces()
    print(f"\npilot exit status: {status}   (pilot log: {work / 'pilot.stderr'})")
    print(f"job {pandaid}: state={record['state']} pilotErrorCode={raw.get('pilotErrorCode')} "
          f"transExitCode={raw.get('transExitCode')}")
    print(f"pilotTiming (getjob|stagein|payload|stageout|setup s): {raw.get('pilotTiming')}")
    ok = record["state"] == "finished"
    for lfn, meta in json.loads(raw.get("xml") or "{}").items():
        scope = job["scopeLog"] if lfn == job["logFile"] else job["scopeOut"].split(",")[0]
        path = storage_path(Path(record.get("storage_dir") or server.storage_dir), scope, lfn)
        actual = f"{zlib.adler32(path.read_bytes()) & 0xffffffff:08x}" if path.exists() else "missing"
        match = "OK" if actual == meta["adler32"] else "MISMATCH"
        ok = ok and match == "OK"
        print(f"  output {lfn}: {meta['fsize']} bytes adler32 {meta['adler32']} at {meta['surl']} "
              f"(on storage: {actual} {match})")
    print(f"Rucio trace reports received by the dev server: {len(traces)}")
    print("\nDEMO OK" if ok else "\nDEMO FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
