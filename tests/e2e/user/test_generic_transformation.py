"""Generic jobs whose transformation is a URL (user analysis jobs), run against the dev server.

The dev server serves the transformation (``GET /files/<path>``); the pilot finds it in the work
dir, copies it from ``$HARVESTER_WORKDIR`` or downloads it from an allowed base URL (``-g``),
or fails the job with 1149 and the reason.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pilot.common.errorcodes import ErrorCodes
from pilot.devserver.samples import sample_job

USER_TRF = """#!/bin/bash
# user analysis transformation served by the dev server
out="$1"
cat dev.input.*txt | wc -c > "$out"
echo "trf=$0"
"""


def _serve_trf(devserver, name: str = "runGen-00-00-02", text: str = USER_TRF) -> str:
    directory = Path(devserver.files_dir) / "trf" / "user"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)
    return f"{devserver.url}/files/trf"


def _analysis_job(devserver, transformation: str) -> int:
    job = sample_job(devserver.storage_dir)
    out = job["outFiles"].split(",")[0]
    job.update({"transformation": transformation, "prodSourceLabel": "user", "jobPars": out})
    return devserver.submit(job)


def _dead_base() -> str:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/trf"


def _final(devserver, pandaid: int, run) -> tuple:
    run.wait(120)
    record = devserver.wait_final(pandaid, timeout=30)
    return record, record["final_update"]


def test_downloaded_from_an_allowed_base(devserver, start_pilot):
    base = _serve_trf(devserver)
    pandaid = _analysis_job(devserver, f"{base}/user/runGen-00-00-02")
    run = start_pilot(extra=["-g", base])
    record, final = _final(devserver, pandaid, run)
    assert record["state"] == "finished", (final.get("pilotErrorDiag"), run.log_text()[-3000:])
    trf = run.main_dir() / f"PanDA_Pilot-{pandaid}" / "runGen-00-00-02"
    assert not trf.exists() or os.access(trf, os.X_OK)
    assert "downloaded transformation" in run.log_text()
    assert [r for r in devserver.requests("files")], "the transformation was not fetched from the dev server"


def test_fallback_to_another_allowed_base(devserver, start_pilot):
    base = _serve_trf(devserver)
    dead = _dead_base()
    pandaid = _analysis_job(devserver, f"{dead}/user/runGen-00-00-02")
    run = start_pilot(extra=["-g", f"{dead},{base}"])
    record, final = _final(devserver, pandaid, run)
    assert record["state"] == "finished", (final.get("pilotErrorDiag"), run.log_text()[-3000:])
    assert "transformation download failed" in run.log_text()


def test_copied_from_harvester_workdir(devserver, start_pilot, tmp_path):
    harvester = tmp_path / "harvester"
    harvester.mkdir()
    (harvester / "runGen-00-00-03").write_text(USER_TRF)
    pandaid = _analysis_job(devserver, f"{_dead_base()}/user/runGen-00-00-03")  # no network needed
    run = start_pilot(env={"HARVESTER_WORKDIR": str(harvester)})
    record, final = _final(devserver, pandaid, run)
    assert record["state"] == "finished", (final.get("pilotErrorDiag"), run.log_text()[-3000:])
    assert "copied transformation runGen-00-00-03 from HARVESTER_WORKDIR" in run.log_text()


def test_not_below_an_allowed_base_fails_with_1149(devserver, start_pilot):
    base = _serve_trf(devserver)
    pandaid = _analysis_job(devserver, f"{base}/user/runGen-00-00-02")
    run = start_pilot()  # no -g: the dev server is not an allowed place
    record, final = _final(devserver, pandaid, run)
    assert record["state"] == "failed"
    assert int(final["pilotErrorCode"]) == ErrorCodes.TRFDOWNLOADFAILURE
    assert "not below an allowed base URL" in final["pilotErrorDiag"]
    assert devserver.requests("files") == []


def test_missing_everywhere_fails_with_1149_and_every_reason(devserver, start_pilot):
    base = _serve_trf(devserver)
    pandaid = _analysis_job(devserver, f"{base}/user/no-such-trf")
    run = start_pilot(extra=["-g", base])
    record, final = _final(devserver, pandaid, run)
    assert int(final["pilotErrorCode"]) == ErrorCodes.TRFDOWNLOADFAILURE, final
    diag = final["pilotErrorDiag"]
    assert "not in the work dir" in diag and "not in HARVESTER_WORKDIR" not in diag and "404" in diag, diag


def test_size_cap(devserver, start_pilot):
    base = _serve_trf(devserver, text=USER_TRF + "#" * 5000 + "\n")
    pandaid = _analysis_job(devserver, f"{base}/user/runGen-00-00-02")
    run = start_pilot(extra=["-g", base], config_text="\n[Payload]\nmax_trf_size: 1000\n")
    record, final = _final(devserver, pandaid, run)
    assert int(final["pilotErrorCode"]) == ErrorCodes.TRFDOWNLOADFAILURE, final
    assert "max_trf_size" in final["pilotErrorDiag"]
