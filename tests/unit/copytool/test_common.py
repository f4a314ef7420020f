"""Failure classification (compat §8) case by case, time-outs and URL helpers."""

import pytest

from pilot.common.errorcodes import ErrorCodes as E
from pilot.common.exception import PilotException
from pilot.copytool.common import (classify_error, deterministic_path, get_timeout, join_url, local_file_path,
                                   merge_destinations, resolve_common_transfer_errors, tool_setting, transfer_error,
                                   url_to_path)
from pilot.info.filespec import FileSpec
from pilot.util.filehandling import safe_join

CASES = [
    # output, stage-in (code, state), stage-out (code, state)
    ("Run: [ERROR] Operation expired (timeout)", (E.STAGEINTIMEOUT, "CP_TIMEOUT"), (E.STAGEOUTTIMEOUT, "CP_TIMEOUT")),
    ("gfal-copy error: 110 (Connection timed out)", (1151, "CP_TIMEOUT"), (1152, "CP_TIMEOUT")),
    ("destination adler32 does not match the checksum", (1171, "AD_MISMATCH"), (1172, "AD_MISMATCH")),
    ("md5 checksum mismatch", (1145, "MD5_MISMATCH"), (1141, "MD5_MISMATCH")),
    ("globus_xio: System error in connect", (1180, "GLOBUS_FAIL"), (1181, "GLOBUS_FAIL")),
    ("[ERROR] Server responded with an error: [3018] File exists", (1221, "FILE_EXISTS"), (1221, "FILE_EXISTS")),
    ("No such file or directory", (1331, "MISSING_INPUT"), (1103, "NO_FILE")),
    ("[ERROR] Server responded with an error: [3011] No such file or directory", (1331, "MISSING_INPUT"),
     (1103, "NO_FILE")),
    ("DESTINATION CHECKSUM checksum calculation for adler32 not supported", (1242, "CHKSUM_NOTSUP"),
     (1242, "CHKSUM_NOTSUP")),
    ("Could not establish context", (1163, "CONTEXT_FAIL"), (1163, "CONTEXT_FAIL")),
    ("write failed: No space left on device", (1098, "NO_SPACE"), (1333, "NO_SPACE")),
    ("service is not available at the moment", (1324, "SERVICE_ERROR"), (1324, "SERVICE_ERROR")),
    ("[FATAL] Connection error: Connection refused", (1324, "SERVICE_ERROR"), (1324, "SERVICE_ERROR")),
    ("connect: Network is unreachable", (1327, "NETWORK_UNREACHABLE"), (1327, "NETWORK_UNREACHABLE")),
    ("[ERROR] Server responded with an error: [3010] Permission denied", (1362, "XRDCP_ERROR"),
     (1362, "XRDCP_ERROR")),
    ("botocore InvalidAccessKeyId", (1364, "S3_ERROR"), (1364, "S3_ERROR")),
    ("something odd happened", (1099, "COPY_ERROR"), (1137, "COPY_ERROR")),
]


@pytest.mark.parametrize("output,stagein,stageout", CASES)
def test_classification(output, stagein, stageout):
    assert resolve_common_transfer_errors(output, True) == stagein
    assert resolve_common_transfer_errors(output, False) == stageout


def test_error_classes_drive_retries():
    assert classify_error("Connection refused").retryable
    assert classify_error("timed out").retryable
    assert not classify_error("No such file or directory").retryable
    assert not classify_error("adler32 mismatch").retryable
    assert classify_error("adler32 mismatch").kind == "checksum"


def test_details_extracted_and_exception_carries_state():
    exc = transfer_error("junk\nDetails: the real reason\n", is_stagein=False)
    assert exc.get_error_code() == 1137 and exc.state == "COPY_ERROR" and exc.diag == "the real reason"
    assert exc.kwargs["kind"] == "other"


def test_timeout():
    assert get_timeout(0) == 300
    assert get_timeout(200 * 1024 * 1024) == 500
    assert get_timeout(10 ** 13) == 3 * 3600
    assert get_timeout("garbage") == 300


def test_paths_and_urls():
    assert deterministic_path("user.jdoe", "f.root").startswith("user/jdoe/")
    parts = deterministic_path("tests", "in.dat").split("/")
    assert parts[0] == "tests" and len(parts[1]) == 2 and len(parts[2]) == 2 and parts[3] == "in.dat"
    assert join_url("file://", "/data", "a/b") == "file:///data/a/b"
    assert join_url("root://h:1094", "/data/", "/x") == "root://h:1094/data/x"
    assert join_url("root://h:1094/", "", "x") == "root://h:1094/x"
    assert url_to_path("file:///a/b") == "/a/b" and url_to_path("/a/b") == "/a/b"


def test_tool_setting_sources():
    assert tool_setting({"copy_type": "move"}, "mv", "copy_type") == "move"
    assert tool_setting({"copytools": {"mv": {"copy_type": "symlink"}}}, "mv", "copy_type") == "symlink"
    assert tool_setting({"catchall": "a=1 mv_copy_type=move"}, "mv", "copy_type") == "move"
    assert tool_setting({}, "mv", "copy_type", "copy") == "copy"


def test_merge_destinations(tmp_path):
    items = [{"scope": "s", "name": "a", "destination": str(tmp_path)},
             {"scope": "s", "name": "b", "destination": str(tmp_path / "nope")}]
    grouped = merge_destinations(items)
    assert grouped[str(tmp_path)]["lfns"] == {"s:a"}
    assert items[1]["errno"] == 1 and items[1]["status"] == "failed" and items[0]["errno"] == 2


@pytest.mark.parametrize("base", ["/w/job", "/w/job/", "/w//job", "/w/./job/../job2", "//w/job", "/", "rel/job",
                                  "rel/../up", ""])
@pytest.mark.parametrize("lfn", ["a.dat", "EVNT.1234._000001.pool.root.1", ".hidden", "..x", "a b", "x" * 255,
                                 "x" * 256, "sub/a.dat", "../a", "..", ".", "/etc/passwd", "", "a\x00b", "dir/"])
def test_local_file_path_is_safe_join(base, lfn, tmp_path, monkeypatch):
    """The shortcut for plain names gives what safe_join gives, and refuses what it refuses."""
    monkeypatch.chdir(tmp_path)
    try:
        expected = safe_join(base or str(tmp_path), lfn)
    except PilotException as exc:
        with pytest.raises(PilotException) as err:
            local_file_path(FileSpec(lfn=lfn, workdir=base))
        assert err.value.get_error_code() == exc.get_error_code()
    else:
        assert local_file_path(FileSpec(lfn=lfn, workdir=base)) == expected
        assert local_file_path(FileSpec(lfn=lfn), base) == expected


@pytest.mark.parametrize("url", ["file:///data/a.dat", "file:////data//a.dat", "file:///", "file:///d/a.dat?x=1",
                                 "file:///d/a;b.dat", "file:///d/a#b", "file:///d/a\tb", "file://localhost/d/a",
                                 "file://host/d/a", "file:///d/%20a", "/plain/path"])
def test_url_to_path_shortcut_matches_urlparse(url):
    from urllib.parse import urlparse

    if url.startswith("file://"):
        parsed = urlparse(url)
        expected = parsed.path if parsed.netloc in ("", "localhost") else f"/{parsed.netloc}{parsed.path}"
    else:
        expected = url
    assert url_to_path(url) == expected
