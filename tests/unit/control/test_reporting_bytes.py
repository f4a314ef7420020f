"""The bytes a typical job's updates put on the wire stay within a budget (issue 21, point 5).

Bytes, not time: deterministic for given field values, so this is a unit test.

The budget: the best reference (Pilot 2 2.12.8.1) sent 1872 bytes of request bodies for the bench's one-job
scenario (report of 2026-12-07: getJob + 4 updateJob, no Rucio trace). Ours sends one getJob of 150 bytes
(measured against the dev server, same scenario), so its updates of the same job (starting, running, final
with one output and the log in ``xml``) must stay within 1872 - 150 = 1722 bytes, form-encoded as
``pilot.util.https`` sends them. The values below have the bench's lengths (queue DEV_QUEUE, node "vm",
pilotID without GTAG, CPU unit of its machine), with a realistic root:// SURL instead of the bench's file://.
"""

import urllib.parse

from pilot.control.reporting import SiteInfo, build_update
from pilot.info.jobdata import JobData, JobPhase
from pilot.util import constants as c
from pilot.util.https import _form_value

REFERENCE_BYTES = 1872  # Pilot 2, scenario a, 2026-12-07
OUR_GETJOB_BYTES = 150  # ours, same scenario: siteName, computingElement, prodSourceLabel, diskSpace, ...
BUDGET = REFERENCE_BYTES - OUR_GETJOB_BYTES

SITE = SiteInfo(site_name="DEV_QUEUE", node="vm", pilot_id="unknown|PR|0.1.0.1",
                cpu_consumption_unit="s+AMD EPYC 512 KB+AVX2")
SURL = "root://xrootd.example.org:1094//rucio/bench/c2/f8/"


def wire_bytes(fields: dict) -> int:
    return len(urllib.parse.urlencode({k: _form_value(v) for k, v in fields.items()}).encode())


def typical_job() -> JobData:
    job = JobData.from_definition({"PandaID": "1001", "transformation": "./bench-payload.sh", "jobPars": "5",
                                   "attemptNr": "1", "coreCount": "1", "prodSourceLabel": "managed",
                                   "outFiles": "bench.out.17aaf4c863.txt,bench.log.17aaf4c863.tgz",
                                   "scopeOut": "bench", "logFile": "bench.log.17aaf4c863.tgz"})
    job.starttime = 1796677124.0
    return job


def typical_updates() -> list:
    job = typical_job()
    job.advance(JobPhase.VALIDATED)
    job.advance(JobPhase.STAGEIN)
    starting = build_update(job, SITE, final=False, pilot_start=job.starttime)
    job.advance(JobPhase.PAYLOAD)
    running = build_update(job, SITE, final=False, pilot_start=job.starttime)
    job.advance(JobPhase.STAGEOUT)
    job.cpuconsumptiontime = 0.0
    job.transexitcode = 0
    job.outputs_xml = {
        "bench.out.17aaf4c863.txt": {"guid": "4d05df71-b4bc-458b-8d72-9e99847f54fe", "fsize": 4,
                                     "adler32": "01de00a5", "surl": SURL + "bench.out.17aaf4c863.txt"},
        "bench.log.17aaf4c863.tgz": {"guid": "ee7894dc-2cf1-4831-8562-a8a571b9263f", "fsize": 632,
                                     "adler32": "7dfd3f53", "surl": SURL + "bench.log.17aaf4c863.tgz"}}
    t = job.starttime
    job.timing.update({c.PILOT_PRE_STAGEIN: t, c.PILOT_POST_STAGEIN: t, c.PILOT_PRE_PAYLOAD: t,
                       c.PILOT_POST_PAYLOAD: t + 5, c.PILOT_PRE_STAGEOUT: t + 5, c.PILOT_POST_STAGEOUT: t + 5})
    job.advance(JobPhase.FINISHED)
    final = build_update(job, SITE, final=True, pilot_start=t)
    return [starting, running, final]


def test_a_typical_jobs_updates_stay_within_the_best_references_bytes():
    updates = typical_updates()
    assert [u["state"] for u in updates] == ["starting", "running", "finished"]
    sizes = [wire_bytes(u) for u in updates]
    assert sum(sizes) <= BUDGET, f"update bodies {sizes} = {sum(sizes)} bytes > budget {BUDGET}"


def test_the_budget_keeps_the_fields_the_server_reads():
    """No byte is saved by dropping what panda-server's updateJob reads (compat reference 4.4)."""
    starting, running, final = typical_updates()
    every = {"jobId", "state", "timestamp", "siteName", "node", "attemptNr", "pilotID", "startTime", "coreCount",
             "jobSubStatus", "jobMetrics", "cpuConversionFactor"}
    assert every <= set(starting) and every <= set(running) and every <= set(final)
    assert {"pilotErrorCode", "pilotErrorDiag", "transExitCode", "exeErrorCode", "exeErrorDiag", "pilotTiming",
            "endTime", "xml", "cpuConsumptionTime", "cpuConsumptionUnit"} <= set(final)
    assert starting["jobSubStatus"] == "stagein" and running["jobSubStatus"] == "running"
