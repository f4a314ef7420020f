"""pilot.util.statefile: the pilot's state is read back bounded and checked, or set aside."""

from __future__ import annotations

import json
import os

import pytest

from pilot.util.statefile import Ledger, RejectedRecord, StateLayout, read_record, read_valid, set_aside


def test_regular_record_is_read(tmp_path):
    (tmp_path / "1.json").write_text(json.dumps({"a": 1}))
    assert read_record(str(tmp_path), "1.json") == {"a": 1}


@pytest.mark.parametrize("make,why", [
    (lambda p: os.mkfifo(p), "FIFO"),
    (lambda p: os.symlink("/dev/zero", p), "outside"),
    (lambda p: os.mkdir(p), "directory"),
    (lambda p: p.write_text("[1, 2]"), "not a JSON object"),
    (lambda p: p.write_bytes(b"\xff\xfe"), "not JSON"),
])
def test_what_is_not_a_record_is_refused(tmp_path, make, why):
    make(tmp_path / "1.json")
    with pytest.raises(RejectedRecord, match=why):
        read_record(str(tmp_path), "1.json")


def test_oversized_record_is_refused_without_reading_it(tmp_path):
    with open(tmp_path / "1.json", "wb") as handle:
        handle.truncate(1 << 40)  # sparse: a read of it would never end
    with pytest.raises(RejectedRecord, match="more than a record can be"):
        read_record(str(tmp_path), "1.json", limit=1024)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_record_of_another_uid_is_refused(tmp_path):
    path = tmp_path / "1.json"
    path.write_text("{}")
    os.chown(path, 65534, 65534)
    with pytest.raises(RejectedRecord, match="owned by uid 65534"):
        read_record(str(tmp_path), "1.json")


def test_bad_entries_are_set_aside_and_good_ones_kept(tmp_path):
    import re

    os.mkfifo(tmp_path / "2.json")
    (tmp_path / "3.json").write_text("{}")
    (tmp_path / "x.json").write_text("{}")  # does not match: neither read nor touched
    found = [name for name, _, _ in read_valid(str(tmp_path), re.compile(r"^([0-9]+)\.json$"))]
    assert found == ["3.json"]
    names = sorted(os.listdir(tmp_path))
    assert "2.json" not in names and any(n.startswith("2.json.rejected-") for n in names)
    assert "x.json" in names
    set_aside(str(tmp_path), "x.json", "test")
    assert "x.json" not in os.listdir(tmp_path)


def test_ledger(tmp_path):
    ledger = Ledger(str(tmp_path / "ledger"))
    assert not ledger.knows("5")
    assert ledger.received("5") and ledger.knows("5") and not ledger.is_acknowledged("5")
    assert ledger.acknowledged("5") and ledger.is_acknowledged("5")
    assert not ledger.received("../5") and not ledger.knows("../5")  # only PandaIDs
    (tmp_path / "ledger" / "6.received").write_text("not empty")  # not a mark the pilot makes
    assert not ledger.knows("6")
    assert ledger.received("6") and ledger.knows("6")  # the odd one is set aside and replaced


def test_work_dir_must_be_this_trees(tmp_path):
    layout = StateLayout(str(tmp_path)).create()
    for name in ("pilot_outbox", "pilot_recovery", "pilot_ledger"):
        assert (tmp_path / name).is_dir() and (tmp_path / name).stat().st_mode & 0o777 == 0o700
    main = tmp_path / "PanDA_Pilot2_1_2"
    good = main / "PanDA_Pilot-7"
    good.mkdir(parents=True)
    (tmp_path / "PanDA_Pilot-8").mkdir()
    assert layout.workdir_inside(str(good), "7")
    assert layout.workdir_inside(str(tmp_path / "PanDA_Pilot-8"), "8")  # no -a: directly in the root
    assert not layout.workdir_inside(str(good), "8")  # another job's dir
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere" / "PanDA_Pilot-7"
    outside.mkdir(parents=True)
    assert not layout.workdir_inside(str(outside), "7")
    link = main / "PanDA_Pilot-9"
    link.symlink_to(outside)
    assert not layout.workdir_inside(str(link), "9")
    deep = tmp_path / "a" / "b" / "PanDA_Pilot-7"
    deep.mkdir(parents=True)
    assert not layout.workdir_inside(str(deep), "7")
    assert not layout.workdir_inside(None, "7")


def test_jobs_waiting_in_reads_records_checked(tmp_path):
    from pilot.control.recovery import jobs_waiting_in

    area = tmp_path / "pilot_recovery"
    area.mkdir()
    main = tmp_path / "PanDA_Pilot2_1_2"
    (area / "7.json").write_text(json.dumps({"state": {"workdir": str(main / "PanDA_Pilot-7")}}))
    (area / "8.json").write_text(json.dumps({"state": {"workdir": "/elsewhere/PanDA_Pilot-8"}}))
    os.mkfifo(area / "9.json")  # would block a plain open() for ever
    assert jobs_waiting_in(str(area), str(main)) == ["7"]
    assert any(n.startswith("9.json.rejected-") for n in os.listdir(area))


def test_final_update_is_sent_when_the_outbox_cannot_be_written(tmp_path):
    from pilot.control.reporting import Outbox, Reporter, SiteInfo
    from pilot.info.jobdata import JobData, JobPhase

    class Server:
        def __init__(self):
            self.sent = []

        def update_job(self, fields, final=False):
            self.sent.append(fields)
            return {"StatusCode": 0}

    class FullOutbox(Outbox):
        def put(self, jobid, fields):
            raise OSError(28, "No space left on device")

    ledger = Ledger(str(tmp_path / "ledger"))
    ledger.received("7")
    server = Server()
    reporter = Reporter(server, SiteInfo("S", "n", "p"), FullOutbox(str(tmp_path / "outbox"), ledger=ledger), 0)
    job = JobData.from_definition({"PandaID": "7", "transformation": "t", "jobPars": ""})
    job.phase = JobPhase.FINISHED
    assert reporter.final(job) is True
    assert server.sent[0]["state"] == "finished" and ledger.is_acknowledged("7")
    assert reporter.unsaved == {} and reporter.is_stored("7")
