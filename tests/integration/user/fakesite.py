"""A fake CVMFS tree (ALRB, asetup, releases, DBRelease), fake transformations, jobs and a payload runner.

Shared by the integration and end-to-end tests of the experiment plug-ins. Nothing here is real ATLAS
software: the scripts only behave like it as far as the pilot can tell.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

from pilot.common.exception import PilotException
from pilot.control import payload as payload_control
from pilot.control.payloads.generic import PayloadExecutor, read_job_report
from pilot.info.jobdata import JobData
from pilot.workflow.generic import UserPlugins

RELEASE = "21.0.15"

ALRB_SETUP = r"""# fake atlasLocalSetup.sh written by the tests
export AtlasSetup="${ATLAS_LOCAL_ROOT_BASE%/ATLASLocalRootBase}/sw/software/AtlasSetup"
_fake_c=""; _fake_s=""; _fake_r=""
while [ $# -gt 0 ]; do
  case "$1" in
    -c) _fake_c="$2"; shift ;;
    -s) _fake_s="$2"; shift ;;
    -r) _fake_r="$2"; shift ;;
    -e) shift ;;
  esac
  shift
done
if [ -n "$_fake_c" ]; then
  echo "fake ALRB container for platform $_fake_c"
  _fake_root="${ATLAS_LOCAL_ROOT_BASE%/atlas.cern.ch/repo/ATLASLocalRootBase}"
  exec bwrap --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --ro-bind "$_fake_root" "$_fake_root" \
    --bind "$PWD" /srv --chdir /srv \
    --unshare-pid --die-with-parent --setenv AtlasSetup "$AtlasSetup" --setenv FAKE_ALRB_PLATFORM "$_fake_c" \
    -- /bin/bash -c "source $_fake_s && source $_fake_r"
fi
"""

ASETUP = r"""# fake asetup.sh written by the tests: asetup.sh <parts,release,notest> [--platform p] [--makeflags=...]
_fake_sw="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
_fake_release=""
for _fake_part in $(echo "$1" | tr ',' ' '); do
  case "$_fake_part" in [0-9]*.[0-9]*) _fake_release="$_fake_part" ;; esac
done
if [ -z "$_fake_release" ] || [ ! -d "$_fake_sw/$_fake_release" ]; then
  echo "AtlasSetup(ERROR): No release candidates found for $1"
  return 1 2>/dev/null || exit 1
fi
export PATH="$_fake_sw/$_fake_release/bin:$PATH"
export AtlasVersion="$_fake_release"
echo "fake asetup: release $_fake_release ready"
"""

TRANSFORM = r"""#!/bin/bash
# fake production transformation written by the tests
out=""; events=10; mode=ok
for arg in "$@"; do
  case "$arg" in
    --outputHITSFile=*) out="${arg#*=}" ;;
    --maxEvents=*) events="${arg#*=}" ;;
    --fail=*) mode="${arg#*=}" ;;
  esac
done
echo "fake transform: release ${AtlasVersion:-none} in $PWD with $*"
[ -n "$out" ] && echo "hits of $events events" > "$out"
case "$mode" in
  ok)
    cat > jobReport.json <<EOF
{"reportVersion": "2.0.0", "exitCode": 0, "exitMsg": "OK",
 "resource": {"transform": {"processedEvents": $events, "cpuTimeTotal": 3},
              "dbTimeTotal": 1.5, "dbDataTotal": 2048, "executor": {}},
 "files": {"output": [{"subFiles": [{"name": "$out", "file_guid": "0A1B2C3D-0000-1111-2222-333344445555"}]}]}}
EOF
    exit 0 ;;
  badalloc)
    echo "terminate called after throwing an instance of 'std::bad_alloc'" >&2
    cat > jobReport.json <<EOF
{"exitCode": 65, "exitMsg": "Non-zero return code from EVNTtoHITS (134)",
 "executor": [{"logfileReport": {"details": {"ERROR": [{"message": "std::bad_alloc caught in event loop"}]}}}]}
EOF
    exit 65 ;;
  segv) kill -SEGV $$ ;;
  core) echo "fake core" > core.4242; exit 1 ;;
  container) echo "FATAL:   Failed to create user namespace: not allowed" >&2; exit 255 ;;
esac
exit 3
"""


def _write(path: Path, text: str, executable: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if executable:
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def make_fake_cvmfs(root: Path, releases: tuple = (RELEASE,), dbreleases: tuple = ()) -> Path:
    """Create ALRB, AtlasSetup, the given releases (each with a ``Sim_tf.py``) and DBReleases under root."""
    repo = root / "atlas.cern.ch" / "repo"
    _write(repo / "ATLASLocalRootBase" / "user" / "atlasLocalSetup.sh", ALRB_SETUP)
    _write(repo / "sw" / "software" / "AtlasSetup" / "scripts" / "asetup.sh", ASETUP)
    for release in releases:
        _write(repo / "sw" / "software" / release / "bin" / "Sim_tf.py", TRANSFORM, executable=True)
    for version in dbreleases:
        (repo / "sw" / "database" / "DBRelease" / version).mkdir(parents=True, exist_ok=True)
    return root


def make_job(workdir: Path, pandaid: str = "4242", **fields: Any) -> JobData:
    """A job with a work dir; ``fields`` are getJob keys overriding a small production definition."""
    definition = {"PandaID": pandaid, "taskID": "77", "jobsetID": "5", "attemptNr": "1",
                  "transformation": "Sim_tf.py", "jobPars": "--maxEvents=5 --outputHITSFile=HITS.pool.root.1",
                  "swRelease": f"Atlas-{RELEASE}", "homepackage": f"AtlasOffline/{RELEASE}",
                  "cmtConfig": "x86_64-centos7-gcc8-opt", "coreCount": "1", "processingType": "simul",
                  "prodSourceLabel": "managed", "outFiles": "HITS.pool.root.1", "scopeOut": "mc16",
                  "realDatasets": "mc16.HITS", "ddmEndPointOut": "LOCAL"}
    definition.update(fields)
    job = JobData.from_definition(definition)
    job.workdir = str(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    return job


class FakeCommunicator:
    """Answers getProxy with a fixed text and records the roles asked for."""

    def __init__(self, proxy_text: str = "", status: int = 0) -> None:
        self.proxy_text = proxy_text
        self.status = status
        self.roles: list = []

    def get_proxy(self, role: str) -> dict:
        self.roles.append(role)
        if self.status:
            return {"StatusCode": self.status, "errorDialog": "no proxy for you"}
        return {"StatusCode": 0, "errorDialog": "", "userProxy": self.proxy_text}


def run_job_payload(job: JobData, experiment: str, env: Optional[dict] = None,
                    communicator: Any = None) -> dict:
    """Run a job's payload as the pilot does (command, guard, exit record, job report, diagnosis)."""
    plugins = UserPlugins(experiment)
    plugins.module("common").validate(job)
    executor = PayloadExecutor(job, plugins, env=env, grace=2.0)
    executor.communicator = communicator
    status: dict = {}
    try:
        executor.start(executor.command())
        status = executor.wait()
        payload_control._record_exit(job, status)
    except PilotException as exc:
        job.fail(exc.get_error_code(), exc.get_detail())
    read_job_report(job)
    if job.exitcode is not None and not job.errors:
        payload_control._diagnose(SimpleNamespace(user=plugins), job)
    return status


def make_proxy_pem(path: Path, days: int = 2, voms_hex: str = "") -> Path:
    """A self-signed certificate plus key in one PEM file (proxy-like); optional VOMS extension DER (hex)."""
    key = path.with_suffix(".key")
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(path),
           "-days", str(days), "-subj", "/CN=pilot test proxy"]
    if voms_hex:
        cmd += ["-addext", f"1.3.6.1.4.1.8005.100.100.5=DER:{voms_hex}"]
    subprocess.run(cmd, check=True, capture_output=True)
    with open(path, "a") as handle:
        handle.write(key.read_text())
    key.unlink()
    os.chmod(path, 0o600)
    return path


def der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_length(len(content)) + content


def voms_extension_hex(not_before: str, not_after: str) -> str:
    """DER of a minimal VOMS AC sequence whose validity is (not_before, not_after) as YYYYMMDDHHMMSSZ."""
    validity = der(0x30, der(0x18, not_before.encode()) + der(0x18, not_after.encode()))
    acinfo = der(0x30, der(0x02, b"\x01") + der(0x30, der(0x06, b"\x2a\x03")) + der(0x02, b"\x07") + validity)
    ac = der(0x30, acinfo + der(0x30, der(0x06, b"\x2a\x03")) + der(0x03, b"\x00\x00"))
    return der(0x30, der(0x30, ac)).hex()
