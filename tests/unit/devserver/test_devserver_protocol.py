"""Unit tests of the dev server's wire helpers (pilot.devserver.protocol)."""

import gzip
import json

import pytest

from pilot.devserver import protocol as proto


def test_form_body_and_query_are_merged_last_value_wins():
    params = proto.decode_params("a=1&b=2", b"b=3&c=x%20y&c=z", {"Content-Type": "application/x-www-form-urlencoded"})
    assert params == {"a": "1", "b": "3", "c": "z"}


def test_bracket_keys_keep_all_values():
    params = proto.decode_params("json&pandaqueue[]=A&pandaqueue[]=B", b"", {})
    assert params["pandaqueue[]"] == ["A", "B"]
    assert params["json"] == ""


def test_json_body_keeps_types():
    body = json.dumps({"jobId": 7, "state": "running", "coreCount": 2}).encode()
    params = proto.decode_params("", body, {"Content-Type": "application/json"})
    assert params == {"jobId": 7, "state": "running", "coreCount": 2}


def test_gzip_json_without_content_encoding_is_recognised():
    # Pilot 3 compresses the JSON body but announces only Content-Type: application/json
    body = gzip.compress(json.dumps({"siteName": "Q", "node": "n1"}).encode())
    params = proto.decode_params("", body, {"content-type": "application/json"})
    assert params == {"siteName": "Q", "node": "n1"}


def test_gzip_form_with_header():
    body = gzip.compress(b"jobId=5&state=failed")
    params = proto.decode_params("", body, {"Content-Encoding": "gzip"})
    assert params == {"jobId": "5", "state": "failed"}


def test_json_list_body_goes_to_body_key():
    params = proto.decode_params("", b'[{"a": 1}]', {})
    assert params == {"_body": [{"a": 1}]}


def test_invalid_json_with_json_content_type_is_bad_request():
    with pytest.raises(proto.BadRequest):
        proto.decode_params("", b"{not json", {"Content-Type": "application/json"})


def test_corrupt_gzip_is_bad_request():
    with pytest.raises(proto.BadRequest):
        proto.decode_params("", b"\x1f\x8bgarbage", {})


def test_job_reply_is_all_strings_with_defaults_and_no_private_keys():
    reply = proto.job_reply({"jobPars": "-c 'x'", "coreCount": 4, "_queue": "Q", "_eventRanges": [1],
                             "debug": True, "preprocess": {"command": "a", "args": "b"}, "taskID": None}, 42)
    assert reply["PandaID"] == "42"
    assert reply["StatusCode"] == 0
    assert reply["coreCount"] == "4"
    assert reply["debug"] == "True"
    assert reply["taskID"] == "NULL"
    assert json.loads(reply["preprocess"]) == {"command": "a", "args": "b"}
    assert "_queue" not in reply and "_eventRanges" not in reply
    assert reply["jobName"] == "devserver.42"
    for key in ("inFiles", "outFiles", "logFile", "GUID", "checksum", "fsize", "scopeIn", "ddmEndPointOut",
                "attemptNr", "prodSourceLabel", "transformation", "swRelease", "maxDiskCount"):
        assert key in reply
    assert all(isinstance(value, str) for key, value in reply.items() if key != "StatusCode")


def test_no_jobs_reply_matches_the_dispatcher():
    assert proto.no_jobs_reply() == {"StatusCode": 20, "errorDialog": "no jobs in PanDA"}


def test_final_states():
    assert proto.FINAL_STATES == {"finished", "failed"}
    assert "holding" in proto.ACCEPTED_STATES and "holding" not in proto.FINAL_STATES


def test_interpret_update_decodes_structured_fields():
    fields = {"xml": json.dumps({"f.root": {"guid": "G", "fsize": 1}}), "jobMetrics": "nEvents=10 actualCoreCount=1",
              "pilotTiming": "1|2|30|4|5", "metaData": "not json", "state": "finished"}
    out = proto.interpret_update(fields)
    assert out["xml"] == {"f.root": {"guid": "G", "fsize": 1}}
    assert out["jobMetrics"] == {"nEvents": "10", "actualCoreCount": "1"}
    assert out["pilotTiming"] == [1, 2, 30, 4, 5]
    assert out["metaData"] == "not json"
    assert fields["pilotTiming"] == "1|2|30|4|5"  # the input is not modified


def test_pilot_timing_with_bad_part():
    assert proto.parse_pilot_timing("1|x|3") == [1, -1, 3]
    assert proto.parse_pilot_timing("") == []


def test_flatten_range_updates_version_0_and_1():
    v0 = [{"eventRangeID": "r1", "eventStatus": "failed", "errorCode": 1220}]
    assert proto.flatten_range_updates(v0) == v0
    v1 = [{"zipFile": {"lfn": "z.tar", "numEvents": 2},
           "eventRanges": [{"eventRangeID": "r2", "eventStatus": "finished"},
                           {"eventRangeID": "r3", "eventStatus": "finished"}]},
          {"esOutput": {"numEvents": 1}, "eventRanges": [{"eventRangeID": "r4", "eventStatus": "finished"}]}]
    flat = proto.flatten_range_updates(v1)
    assert [item["eventRangeID"] for item in flat] == ["r2", "r3", "r4"]
    assert flat[0]["zipFile"]["lfn"] == "z.tar"
    assert flat[2]["esOutput"] == {"numEvents": 1}


def test_text_and_int_fields():
    params = {"a": 5, "b": "7.0", "c": "x"}
    assert proto.text_field(params, "missing", "a") == "5"
    assert proto.int_field(params, "b") == 7
    assert proto.int_field(params, "c", default=-1) == -1
