"""Payload messages and updateEventRanges records (pilot.eventservice.eventrange)."""

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import MessageFailure
from pilot.eventservice.eventrange import (esoutput_update, failed_update, parse_out_message, range_events,
                                           zip_update)


def test_output_report():
    msg = parse_out_message("/work/dir/HITS.pool.root.ev-1,ID:1234-56-7-8,CPU:12,WALL:15")
    assert msg["id"] == "1234-56-7-8" and msg["status"] == "finished"
    assert msg["output"] == "/work/dir/HITS.pool.root.ev-1"
    assert (msg["cpu"], msg["wall"]) == ("12", "15")


def test_output_path_with_comma_and_relative_path():
    msg = parse_out_message("out/a,b.root,ID:r1,CPU:1,WALL:2\n")
    assert msg["output"] == "out/a,b.root" and msg["id"] == "r1"


@pytest.mark.parametrize("text, rid, status", [
    ("ERR_TE_FATAL 12-3-4: bad token", "12-3-4", "fatal"),
    ("ERR_TE_RANGE r7: could not read", "r7", "failed"),
    ("ERR_ATHENAMP_PROCESS 1-2-3: worker died", "1-2-3", "failed"),
])
def test_error_messages(text, rid, status):
    msg = parse_out_message(text)
    assert (msg["id"], msg["status"], msg["message"]) == (rid, status, text)


def test_athenamp_parse_error_takes_the_id_from_the_range():
    text = """ERR_ATHENAMP_PARSE "{'eventRangeID': '1-2-3-4', 'startEvent': 1}": cannot parse"""
    msg = parse_out_message(text)
    assert msg["id"] == "1-2-3-4" and msg["status"] == "failed"


@pytest.mark.parametrize("text", ["hello", "ERR_NOTHING", "ERR_ATHENAMP_PARSE \"{}\": x", "/a/b,CPU:1"])
def test_unknown_messages_raise_1240(text):
    with pytest.raises(MessageFailure) as info:
        parse_out_message(text)
    assert info.value.code == ErrorCodes.MESSAGEHANDLINGFAILURE


def test_zip_update_record():
    update = zip_update(["a", "b"], "EventService_premerge_a.tar", 1234, {"adler32": "0a0b0c0d"}, 5)
    assert update == [{"zipFile": {"numEvents": 2, "objstoreID": 5, "lfn": "EventService_premerge_a.tar",
                                   "fsize": 1234, "pathConvention": 1000, "adler32": "0a0b0c0d"},
                       "eventRanges": [{"eventRangeID": "a", "eventStatus": "finished"},
                                       {"eventRangeID": "b", "eventStatus": "finished"}]}]


def test_esoutput_update_record():
    update = esoutput_update([{"id": "r1", "pfn": "root://x//a", "fsize": 10, "adler32": "01"}])
    assert update == [{"esOutput": {"numEvents": 1}, "eventRanges": [
        {"eventRangeID": "r1", "eventStatus": "finished", "pfn": "root://x//a", "fsize": 10, "adler32": "01"}]}]
    assert esoutput_update([]) == []


def test_failed_update_is_version_0_with_1220():
    update = failed_update([{"id": "a", "status": "fatal"}, {"id": "b", "status": "weird"}])
    assert update == [{"eventRangeID": "a", "eventStatus": "fatal", "errorCode": 1220},
                      {"eventRangeID": "b", "eventStatus": "failed", "errorCode": 1220}]


def test_range_events():
    assert range_events({"startEvent": 11, "lastEvent": 15}) == 5
    assert range_events({"startEvent": "3", "lastEvent": "3"}) == 1
    assert range_events({}) == 1 and range_events(None) == 1
