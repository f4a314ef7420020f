"""The updateJob fields each server generation records: times, sub-state, meanCoreCount, node."""

import os
import time
from datetime import datetime, timezone

import pytest

from pilot.api.communicators import rest
from pilot.control.reporting import SERVER_TIME, SiteInfo, build_update, job_substate, mean_core_count, server_time
from pilot.info.jobdata import JobData, JobPhase
from pilot.util import workernode
from pilot.util.proctree import ProcInfo, cores_in_use

SITE = SiteInfo(site_name="SITE", node="host", pilot_id="gtag|PR|0.1")


def make_job():
    return JobData.from_definition({"PandaID": "7", "transformation": "/bin/true", "jobPars": "", "logFile": "l.tgz"})


def parsed_by_both_generations(value):
    """panda-server 0.8 (updateJob) and 1.x (update_job) both do exactly this and drop what fails."""
    return datetime(*time.strptime(value, "%Y-%m-%d %H:%M:%S")[:6])


def test_start_and_end_time_in_the_format_both_servers_parse():
    job = make_job()
    job.starttime = 1700000000.4
    job.advance(JobPhase.FAILED)
    job.endtime = 1700000100.0
    data = build_update(job, SITE, final=True, pilot_start=0)
    assert data["startTime"] == "2023-11-14 22:13:20" and data["endTime"] == "2023-11-14 22:15:00"
    assert parsed_by_both_generations(data["startTime"]) < parsed_by_both_generations(data["endTime"])
    # the REST translation keeps them (UTC already), and still reads what older versions stored
    assert rest.update_job_params(data)["start_time"] == data["startTime"]
    assert rest.rest_time("2023-11-14T23:13:20+01:00") == data["startTime"]
    assert server_time(0) == datetime.fromtimestamp(0, tz=timezone.utc).strftime(SERVER_TIME)


@pytest.mark.parametrize("phases, substate", [
    ((), "setup"),
    ((JobPhase.VALIDATED,), "setup"),
    ((JobPhase.VALIDATED, JobPhase.STAGEIN), "stagein"),
    ((JobPhase.VALIDATED, JobPhase.STAGEIN, JobPhase.PAYLOAD), "running"),
    ((JobPhase.VALIDATED, JobPhase.STAGEIN, JobPhase.PAYLOAD, JobPhase.STAGEOUT), "stageout"),
    # a final update keeps the sub-state the job ended in
    ((JobPhase.VALIDATED, JobPhase.STAGEIN, JobPhase.PAYLOAD, JobPhase.STAGEOUT, JobPhase.FINISHED), "stageout"),
    ((JobPhase.VALIDATED, JobPhase.STAGEIN, JobPhase.PAYLOAD, JobPhase.FAILED), "running"),
    ((JobPhase.VALIDATED, JobPhase.STAGEIN, JobPhase.FAILED), "stagein"),
    ((JobPhase.FAILED,), "setup"),
])
def test_sub_state_in_every_update(phases, substate):
    job = make_job()
    for phase in phases:
        job.advance(phase)
    assert job_substate(job) == substate
    final = job.phase in (JobPhase.FINISHED, JobPhase.FAILED)
    data = build_update(job, SITE, final=final, pilot_start=0)
    assert data["jobSubStatus"] == substate
    assert rest.update_job_params(data)["job_sub_status"] == substate


def test_mean_core_count_of_the_samples():
    job = make_job()
    assert mean_core_count(job) is None and "meanCoreCount" not in build_update(job, SITE, False, 0)
    job.corecounts.extend([1, 2, 2, 4])
    data = build_update(job, SITE, final=False, pilot_start=0)
    assert data["meanCoreCount"] == 2.25  # legacy: the server stores float(meanCoreCount)
    assert rest.update_job_params(data)["mean_core_count"] == 2  # 1.x: an int parameter (a float is refused)


def test_cores_in_use_counts_distinct_cpus_of_the_payload_processes():
    def proc(pid, ppid, cpu, state="S"):
        return ProcInfo(pid=pid, ppid=ppid, pgrp=pid, session=1, state=state, utime=0, stime=0, cutime=0, cstime=0,
                        starttime=pid, rss_pages=0, comm="x", processor=cpu)

    table = {10: proc(10, 1, 0), 11: proc(11, 10, 1), 12: proc(12, 11, 3), 13: proc(13, 11, 3),
             14: proc(14, 11, 2, state="Z")}
    assert cores_in_use(10, table) == 2  # the guard (10) and the zombie do not count
    assert cores_in_use(12, table) == 1  # a lone process counts itself
    # a real process: the test itself runs on one CPU
    assert cores_in_use(os.getpid()) >= 1


def test_node_is_the_uname_host_name_not_the_fqdn():
    assert workernode.host_name() == os.uname()[1]
    assert workernode.collect().hostname == os.uname()[1]
