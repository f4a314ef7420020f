"""Unit tests of sample jobs and the local storage layout (pilot.devserver.samples)."""

import hashlib
import json
import zlib

from pilot.devserver import samples
from pilot.devserver.protocol import job_reply


def test_rucio_path_layout():
    digest = hashlib.md5(b"user.jdoe:file.root").hexdigest()
    assert samples.rucio_path("user.jdoe", "file.root") == f"user/jdoe/{digest[:2]}/{digest[2:4]}/file.root"


def test_adler32_helpers_agree(tmp_path):
    data = b"x" * 100000 + b"tail"
    path = tmp_path / "f"
    path.write_bytes(data)
    expected = f"{zlib.adler32(data) & 0xffffffff:08x}"
    assert samples.adler32_of_bytes(data) == expected
    assert samples.adler32_of_file(path, blocksize=4096) == expected
    assert samples.adler32_of_bytes(b"") == "00000001"


def test_bundled_job_json_matches_the_sample_content():
    job = samples.load_sample_job()
    assert job["fsize"] == str(len(samples.SAMPLE_INPUT_CONTENT))
    assert job["checksum"] == "ad:" + samples.adler32_of_bytes(samples.SAMPLE_INPUT_CONTENT)
    assert job["logFile"] in job["outFiles"].split(",")
    assert len(job["outFiles"].split(",")) == len(job["realDatasets"].split(",")) == \
        len(job["ddmEndPointOut"].split(",")) == len(job["destinationDblock"].split(","))
    assert json.loads(samples.SAMPLE_JOB_FILE.read_text())["transformation"] == "/bin/bash"


def test_sample_job_creates_matching_files(tmp_path):
    job = samples.sample_job(tmp_path, unique=False)
    assert job["inFiles"] == "dev.input.txt"
    path = samples.storage_path(tmp_path, "dev", "dev.input.txt")
    assert path.read_bytes() == samples.SAMPLE_INPUT_CONTENT
    assert job["checksum"] == "ad:" + samples.adler32_of_file(path)
    assert job["fsize"] == str(path.stat().st_size)


def test_unique_sample_jobs_do_not_clash(tmp_path):
    one = samples.sample_job(tmp_path)
    two = samples.sample_job(tmp_path)
    for key in ("inFiles", "outFiles", "logFile", "GUID", "logGUID"):
        assert one[key] != two[key]
    out_name = one["outFiles"].split(",")[0]
    assert out_name in one["jobPars"] and "dev.output.txt" not in one["jobPars"]


def test_sample_job_with_several_inputs_and_overrides(tmp_path):
    job = samples.sample_job(tmp_path, contents=[b"a", b"bb", b"ccc"], queue="Q", pandaid=77,
                             overrides={"coreCount": "2"})
    names = job["inFiles"].split(",")
    assert len(names) == 3 and len(set(names)) == 3
    assert job["fsize"] == "1,2,3"
    for key in ("GUID", "checksum", "scopeIn", "realDatasetsIn", "ddmEndPointIn", "prodDBlocks"):
        assert len(job[key].split(",")) == 3, key
    for name, content in zip(names, [b"a", b"bb", b"ccc"]):
        assert samples.storage_path(tmp_path, "dev", name).read_bytes() == content
    assert job["_queue"] == "Q" and job["PandaID"] == "77" and job["coreCount"] == "2"
    reply = job_reply(job, 77)
    assert "_queue" not in reply and reply["inFiles"] == job["inFiles"]
