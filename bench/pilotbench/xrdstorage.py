"""Inputs on the loopback XRootD server, registered in the loopback Rucio: a stage-in that really copies.

The references' ``mv`` tool only links files that already lie next to the pilot, and every other tool of
theirs asks Rucio for the replicas first (``require_replicas``). The project's CI storage gives both: the
XRootD server and the Rucio server on SQLite that ``ci/storage/`` installs and starts (RSE ``PILOT_XRD``,
``root://127.0.0.1:1094//rucio/xrd/``). So in the ``x-*`` scenarios every pilot copies its inputs with
``xrdcp`` from that server: the references after a Rucio ``list_replicas``, ours as it does by default
(an input on a deterministic LAN storage of the queue with size and adler32 given needs no lookup).

The bench files are hard-linked (else copied) into the RSE's directory at their deterministic path and
registered in Rucio once, in a scope named after their contents (``scope_for``): the bench makes new random
files in each work dir, and a Rucio file's checksum cannot change, so files of another bench work dir under the
same names must not be taken for these. The raw copy cost a pilot cannot avoid is measured with plain
``xrdcp`` of the same files after each run: one process per file, and one ``xrdcp --parallel --infiles``
call; the faster of the two is the baseline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from . import REPO, WORK
from .jobs import InputFile, rucio_path

logger = logging.getLogger("pilotbench")

RSE = "PILOT_XRD"
CI_STORAGE = REPO / "ci" / "storage"
REGISTER = Path(__file__).with_name("rucio_register.py")


def storage_environment() -> dict:
    """The variables of ``ci/storage/client-env.sh`` (ports, paths, RUCIO_CONFIG), read from the script."""
    out = subprocess.run(["bash", "-c", f". {CI_STORAGE / 'client-env.sh'} >/dev/null && env -0"],
                         capture_output=True, check=True).stdout.decode()
    env = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    keep = ("STORAGE_", "RUCIO_CONFIG", "X509_CERT_DIR")
    return {k: v for k, v in env.items() if k.startswith(keep)}


class XrdStorage:
    """The loopback XRootD + Rucio storage as the bench uses it."""

    def __init__(self) -> None:
        self.env = storage_environment()
        self.data = Path(self.env["STORAGE_DATA"])
        self.rse_dir = self.data / "rucio" / "xrd"
        self.url = f"root://{self.env['STORAGE_HOST']}:{self.env['STORAGE_XROOTD_PORT']}"
        self.started = False
        self._registered: set = set()

    # ------------------------------------------------------------------ servers
    def start(self) -> None:
        """Install (idempotent) and start the servers unless they are up already."""
        if subprocess.run(["bash", str(CI_STORAGE / "status.sh")], capture_output=True).returncode == 0:
            return
        logger.info("storage servers: installing and starting (ci/storage)")
        venv = WORK / "venv-storage-client"
        subprocess.run(["bash", str(CI_STORAGE / "setup-all.sh"), str(venv)], check=True)
        subprocess.run(["bash", str(CI_STORAGE / "start-all.sh")], check=True)
        self.started = True

    def stop(self) -> None:
        """Stop the servers if this bench started them."""
        if self.started:
            subprocess.run(["bash", str(CI_STORAGE / "stop-all.sh")], capture_output=True)

    # ------------------------------------------------------------------ files
    @staticmethod
    def scope_for(files: list) -> str:
        """A Rucio scope for this set of files, named after their names and checksums."""
        digest = hashlib.sha1("".join(f"{f.lfn}:{f.adler32}\n" for f in files).encode()).hexdigest()  # noqa: S324
        return f"bx{digest[:12]}"

    def publish(self, files: list, scope: str) -> None:
        """Put ``files`` on the RSE at their deterministic path in ``scope`` and register the new ones in Rucio."""
        todo = []
        for f in files:
            target = self.rse_dir / rucio_path(scope, f.lfn)
            if not (target.exists() and target.stat().st_size == f.size):
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".part")
                tmp.unlink(missing_ok=True)
                try:
                    # the same inode as the file:// storage's file, whose mode (0o644, the script 0o755) the
                    # other scenarios rely on: never chmod a link (it made the script non-executable for d)
                    os.link(f.path, tmp)
                except OSError:
                    shutil.copyfile(f.path, tmp)
                    os.chmod(tmp, 0o644)
                os.replace(tmp, target)
            if (scope, f.lfn) not in self._registered:
                todo.append({"scope": scope, "name": f.lfn, "bytes": f.size, "adler32": f.adler32})
        if todo:
            python = Path(self.env["STORAGE_RUCIO_VENV"]) / "bin" / "python"
            subprocess.run([str(python), str(REGISTER), RSE], input=json.dumps(todo), text=True, check=True,
                           env={**os.environ, **self.env}, capture_output=True)
            self._registered.update((scope, item["name"]) for item in todo)

    def pfn(self, f: InputFile, scope: str) -> str:
        """The file's ``root://`` URL."""
        return f"{self.url}//rucio/xrd/{rucio_path(scope, f.lfn)}"

    # ------------------------------------------------------------------ dev server
    def storage_entry(self) -> dict:
        """CRIC-style storage data of the RSE, as the dev server publishes it."""
        protocol = {"endpoint": self.url, "path": "//rucio/xrd/", "flavour": "XROOTD", "id": 2}
        activities = ("read_lan", "read_wan", "write_lan", "write_wan", "delete_lan", "delete_wan",
                      "third_party_copy_read", "third_party_copy_write", "pr", "pw", "pl")
        return {"name": RSE, "id": 2, "type": "DATADISK", "token": "", "is_deterministic": True,
                "state": "ACTIVE", "site": "DEV_SITE", "rc_site": "DEV_SITE", "is_tape": False, "resource": {},
                "arprotocols": {a: [dict(protocol)] for a in activities},
                "rprotocols": {"2": {**protocol, "activities": [[a, 1] for a in activities], "settings": {}}}}

    @staticmethod
    def queue_settings() -> dict:
        """Inputs with xrdcp from the RSE; outputs and log as in the other scenarios (mv to LOCAL_DISK)."""
        out = "LOCAL_DISK"
        return {"copytools": {"xrdcp": {"setup": ""}, "mv": {"setup": ""}},
                "acopytools": {"pr": ["xrdcp"], "pw": ["mv"], "pl": ["mv"], "pls": ["mv"]},
                "astorages": {"pr": [RSE], "read_lan": [RSE], "pw": [out], "pl": [out], "pls": [out],
                              "write_lan": [out]}}

    def pilot_env(self) -> dict:
        """What a pilot needs in its environment to reach the Rucio server."""
        return {"RUCIO_CONFIG": self.env["RUCIO_CONFIG"]}

    # ------------------------------------------------------------------ baseline
    def plain_copy_seconds(self, files: list, target: Path, checksum: bool = True) -> float:
        """The faster of: one ``xrdcp`` per file, one ``xrdcp --parallel --infiles`` for all.

        ``checksum``: with ``--cksum adler32:print``, the command all three pilots' xrdcp tools run (xrdcp
        reads every written file back to checksum it, ~60 ms per 200 MB here); without it, the bare copy.
        Over 20 files only the second way is timed: for 200 files of 10 kB one process each takes ~12 s against
        ~0.1 s for the one call, and timing it before and after every run would add minutes to the bench.
        """
        scope = self.scope_for(files)
        self.publish(files, scope)  # a no-op when the run has placed them already
        cksum = ["--cksum", "adler32:print"] if checksum else []

        def fresh() -> None:
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            os.sync()  # as before each pilot run: no earlier writes flushed while this copy runs

        serial = float("inf")
        if len(files) <= 20:
            fresh()
            start = time.monotonic()
            for f in files:
                _xrdcp(["-s", "-f", *cksum, self.pfn(f, scope), str(target / f.lfn)])
            serial = time.monotonic() - start
        fresh()
        listing = target.parent / "xrdcp-infiles.txt"
        listing.write_text("".join(self.pfn(f, scope) + "\n" for f in files))
        start = time.monotonic()
        _xrdcp(["-s", "-f", *cksum, "--parallel", str(min(len(files), 8)), "--infiles", str(listing),
                str(target) + "/"])
        bulk = time.monotonic() - start
        shutil.rmtree(target, ignore_errors=True)
        listing.unlink()
        return min(serial, bulk)


def _xrdcp(args: list) -> None:
    """One plain xrdcp; its output (the checksum lines, even with ``-s``) is kept out of the bench log."""
    done = subprocess.run(["xrdcp", *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"xrdcp {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")


def scratch_dir() -> Path:
    """Where scenario x's copies land: a tmpfs (``/dev/shm``) with room for them, else ``bench/work``."""
    shm = Path("/dev/shm")
    try:
        stat = os.statvfs(shm)
        if stat.f_bavail * stat.f_frsize > 4 * 2 ** 30:
            return shm / "pilotbench"
    except OSError:
        pass
    return WORK / "scratch"
