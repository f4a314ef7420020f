"""build_update: the updateJob fields, and the outbox."""

import json

from pilot.common.errorcodes import ErrorCodes
from pilot.control.reporting import Outbox, Reporter, SiteInfo, build_update, pilot_timing
from pilot.util.jobmetrics import cut_metrics
from pilot.common.exception import CommunicationFailure
from pilot.info.jobdata import JobData, JobPhase
from pilot.util import constants as c

SITE = SiteInfo(site_name="SITE", node="slot1@host", pilot_id="gtag|SLURM|PR|0.1", batch_id="42",
                scheduler_id="js", cpu_consumption_unit="s+cpu")


def make_job(**extra):
    d = {"PandaID": "7", "transformation": "http://x/runGen", "jobPars": "", "attemptNr": "3",
         "outFiles": "o.root", "scopeOut": "u", "logFile": "l.tgz"}
    d.update(extra)
    return JobData.from_definition(d)


def test_heartbeat_fields():
    job = make_job()
    job.advance(JobPhase.VALIDATED)
    job.advance(JobPhase.STAGEIN)
    job.advance(JobPhase.PAYLOAD)
    job.cpuconsumptiontime = 12.6
    job.memory_summary = {"maxRSS": 100, "avgPSS": None}
    data = build_update(job, SITE, final=False, pilot_start=0)
    assert data["jobId"] == "7" and data["state"] == "running" and data["siteName"] == "SITE"
    assert data["node"] == "slot1@host" and data["attemptNr"] == 3 and data["batchID"] == "42"
    assert data["cpuConsumptionTime"] == 13 and data["cpuConsumptionUnit"] == "s+cpu"
    assert data["maxRSS"] == 100 and "avgPSS" not in data
    assert "pilotErrorCode" not in data
    assert data["timestamp"][-6] in "+-"


def test_final_fields_and_negated_recoverable_code_for_analysis():
    job = make_job()
    job.fail(ErrorCodes.STAGEOUTFAILED, "no space")
    job.advance(JobPhase.FAILED)
    job.outputs_xml = {"o.root": {"guid": "g", "fsize": 1, "adler32": "01", "surl": "file:///x"}}
    t = 1000.0
    job.timing.update({c.PILOT_PRE_GETJOB: t, c.PILOT_POST_GETJOB: t + 1, c.PILOT_PRE_STAGEIN: t + 2,
                       c.PILOT_POST_STAGEIN: t + 5, c.PILOT_PRE_PAYLOAD: t + 6, c.PILOT_POST_PAYLOAD: t + 16,
                       c.PILOT_PRE_STAGEOUT: t + 16, c.PILOT_POST_STAGEOUT: t + 18})
    data = build_update(job, SITE, final=True, pilot_start=t - 2)
    assert data["state"] == "failed"
    assert data["pilotErrorCode"] == -1137
    assert data["pilotTiming"] == "1|3|10|2|3"
    assert json.loads(data["xml"])["o.root"]["adler32"] == "01"


def test_cut_metrics_at_pair_boundary():
    text = " ".join(f"k{i}=value{i}" for i in range(100))
    cut = cut_metrics(text)
    assert len(cut) <= 500 and all("=" in p for p in cut.split(" "))


def test_pilot_timing_missing_values_are_zero():
    assert pilot_timing(make_job(), 0) == "0|0|0|0|0"


class FlakyServer:
    def __init__(self, fail):
        self.fail = fail
        self.sent = []

    def update_job(self, fields, final=False):
        if self.fail:
            raise CommunicationFailure("down")
        self.sent.append(fields)
        return {"StatusCode": 0, "command": "NULL"}


def test_outbox_keeps_undelivered_final_update(tmp_path):
    server = FlakyServer(fail=True)
    reporter = Reporter(server, SITE, Outbox(str(tmp_path / "outbox")), 0)
    job = make_job()
    job.phase = JobPhase.FAILED  # a final update is made for a job in a final state
    assert reporter.final(job) is False
    assert [j for j, _ in reporter.outbox.pending()] == ["7"]
    server.fail = False
    assert reporter.flush_outbox() == 1
    assert reporter.outbox.pending() == []
    assert server.sent[0]["jobId"] == "7" and "pilotErrorCode" in server.sent[0]


class RangeServer:
    def __init__(self):
        self.fail = True
        self.got = []

    def update_event_ranges(self, ranges, version=1):
        if self.fail:
            raise CommunicationFailure("down")
        self.got.append((ranges, version))
        return {"StatusCode": 0}


def test_event_range_updates_are_kept_until_delivered(tmp_path):
    import pytest

    from pilot.control.reporting import DurableRangeUpdates

    server = RangeServer()
    outbox = Outbox(str(tmp_path / "outbox"))
    durable = DurableRangeUpdates(server, outbox)
    with pytest.raises(CommunicationFailure):
        durable.update_event_ranges([{"eventRangeID": "r1", "eventStatus": "finished"}], version=1)
    assert len(outbox.pending_ranges()) == 1
    server.fail = False
    reporter = Reporter(server, SITE, outbox, 0)
    assert reporter.flush_outbox() == 1
    assert outbox.pending_ranges() == [] and server.got[0][0][0]["eventRangeID"] == "r1"
    durable.update_event_ranges([{"eventRangeID": "r2", "eventStatus": "failed"}], version=0)
    assert outbox.pending_ranges() == [] and server.got[1][1] == 0
