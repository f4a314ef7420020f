"""ATLAS payloads on a fake CVMFS tree: release setup, job report, containers, and failures mapped to codes."""

from __future__ import annotations

import json
import tarfile

import pytest
from fakesite import make_job, run_job_payload

from pilot.common.errorcodes import ErrorCodes
from pilot.user.atlas import common as atlas_common
from pilot.user.atlas import diagnose as atlas_diagnose
from pilot.user.atlas.jobmetrics import get_job_metrics


def _codes(job):
    return list(job.errors.codes())


def test_production_job_runs_with_release_setup(tmp_path, queue, cvmfs):
    job = make_job(tmp_path / "job")
    run_job_payload(job, "atlas")
    work = tmp_path / "job"
    stdout = (work / "payload.stdout").read_text()
    assert not job.errors, (_codes(job), (work / "payload.stderr").read_text())
    assert "fake asetup: release 21.0.15 ready" in stdout
    assert "fake transform: release 21.0.15" in stdout
    assert (work / "HITS.pool.root.1").read_text().startswith("hits of 5 events")
    assert job.nevents == 5 and job.dbtime == 1.5 and job.dbdata == 2048
    assert job.exeerrorcode == 0 and job.exeerrordiag == ""
    assert job.outdata[0].guid == "0A1B2C3D-0000-1111-2222-333344445555"
    metrics = get_job_metrics(job)
    assert metrics.startswith("coreCount=1 ") and "nEvents=5" in metrics and "dbTime=1.5" in metrics
    assert "dbData=2048" in metrics and "workDirSize=" in metrics


def test_production_job_inside_bubblewrap(tmp_path, queue, cvmfs, bwrap):
    queue(container_type="bwrap:pilot")
    job = make_job(tmp_path / "job", jobPars="--maxEvents=7 --outputHITSFile=HITS.pool.root.1")
    run_job_payload(job, "atlas")
    assert not job.errors, (_codes(job), (tmp_path / "job" / "payload.stderr").read_text())
    assert job.nevents == 7


def test_production_job_through_alrb_container(tmp_path, queue, cvmfs, bwrap):
    queue(container_type="singularity:pilot", container_options="-B /scratch")
    job = make_job(tmp_path / "job", cmtConfig="x86_64-centos7-gcc8-opt@centos7")
    run_job_payload(job, "atlas")
    work = tmp_path / "job"
    stdout = (work / "payload.stdout").read_text()
    assert not job.errors, (_codes(job), stdout, (work / "payload.stderr").read_text())
    assert "fake ALRB container for platform centos7" in stdout
    assert "fake asetup: release 21.0.15 ready" in stdout
    setup = (work / "my_release_setup.sh").read_text()
    script = (work / "container_script.sh").read_text()
    assert "asetup.sh AtlasOffline,21.0.15,notest --platform x86_64-centos7-gcc8-opt" in setup
    assert "Sim_tf.py --maxEvents=5" in script and "asetup.sh" not in script
    assert "atlasLocalSetup.sh --quiet" not in script
    assert job.nevents == 5


def test_missing_release_fails_before_the_payload(tmp_path, queue, cvmfs):
    job = make_job(tmp_path / "job", swRelease="Atlas-22.0.99", homepackage="Athena/22.0.99")
    run_job_payload(job, "atlas")
    assert _codes(job) == [ErrorCodes.NORELEASEFOUND]
    assert "No release candidates found" in job.errors.first()[1]
    assert not (tmp_path / "job" / "payload.stdout").exists()


def test_missing_release_inside_alrb_container(tmp_path, queue, cvmfs, bwrap):
    queue(container_type="apptainer:pilot")
    job = make_job(tmp_path / "job", swRelease="Atlas-22.0.99", homepackage="Athena/22.0.99")
    run_job_payload(job, "atlas")
    assert _codes(job) == [ErrorCodes.NORELEASEFOUND]


@pytest.mark.parametrize("mode, code", [
    ("badalloc", ErrorCodes.BADALLOC),
    ("segv", ErrorCodes.PAYLOADSIGSEGV),
    ("core", ErrorCodes.COREDUMP),
    ("container", ErrorCodes.SINGULARITYFAILEDUSERNAMESPACE),
    ("unknown", ErrorCodes.PAYLOADEXECUTIONFAILURE),
])
def test_crafted_failures_are_mapped_to_codes(tmp_path, queue, cvmfs, mode, code):
    job = make_job(tmp_path / "job", jobPars=f"--maxEvents=3 --outputHITSFile=HITS.pool.root.1 --fail={mode}")
    run_job_payload(job, "atlas")
    assert _codes(job) == [code], job.errors.first()
    assert job.exitcode != 0


def test_bad_alloc_report_sets_exe_error(tmp_path, queue, cvmfs):
    job = make_job(tmp_path / "job", jobPars="--outputHITSFile=HITS.pool.root.1 --fail=badalloc")
    run_job_payload(job, "atlas")
    assert job.exeerrorcode == 65 and "EVNTtoHITS" in job.exeerrordiag
    assert "bad_alloc" in atlas_diagnose.get_log_extracts(job, "failed")
    assert atlas_diagnose.get_log_extracts(job, "finished") == ""


def test_local_dbrelease_replaces_stage_in(tmp_path, queue, cvmfs):
    job = make_job(tmp_path / "job", jobPars="--maxEvents=1 --DBRelease=DBRelease-31.8.1.tar.gz",
                   inFiles="EVNT.01.pool.root.1,DBRelease-31.8.1.tar.gz", GUID="G-1,G-2", scopeIn="mc16,ddo",
                   fsize="10,20", checksum="ad:00000001,ad:00000002", realDatasetsIn="mc16.EVNT,ddo.DBRelease")
    atlas_common.validate(job)
    tarball = tmp_path / "job" / "DBRelease-31.8.1.tar.gz"
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        setup = tar.extractfile("DBRelease/31.8.1/setup.py").read().decode()
    assert names == ["DBRelease/31.8.1/setup.py", "DBRelease/current"]
    assert "DATAPATH" in setup and "31.8.1" in setup
    states = {spec.lfn: spec.status for spec in job.indata}
    assert states == {"EVNT.01.pool.root.1": None, "DBRelease-31.8.1.tar.gz": "no_transfer"}


def test_unknown_dbrelease_is_staged_in_normally(tmp_path, queue, cvmfs):
    job = make_job(tmp_path / "job", jobPars="--DBRelease=DBRelease-99.9.9.tar.gz",
                   inFiles="DBRelease-99.9.9.tar.gz", GUID="G-2", scopeIn="ddo")
    atlas_common.validate(job)
    assert job.indata[0].status is None
    assert not (tmp_path / "job" / "DBRelease-99.9.9.tar.gz").exists()


def test_pool_file_catalog_lists_the_inputs(tmp_path, queue, cvmfs):
    job = make_job(tmp_path / "job", inFiles="EVNT.01.pool.root.1,EVNT.02.pool.root.1",
                   GUID="AAAA-1,BBBB-2", scopeIn="mc16,mc16")
    job.indata[1].status = "remote_io"
    job.indata[1].turl = "root://eos.example//data/EVNT.02.pool.root.1"
    atlas_common.validate(job)
    atlas_common.get_payload_command(job)
    text = (tmp_path / "job" / "PoolFileCatalog.xml").read_text()
    assert '<File ID="AAAA-1">' in text and 'name="EVNT.01.pool.root.1"' in text
    assert 'name="root://eos.example//data/EVNT.02.pool.root.1"' in text


def test_overwrite_queuedata_switches_on_the_container(tmp_path, queue, cvmfs, bwrap):
    pars = "--maxEvents=2 --outputHITSFile=HITS.pool.root.1 --overwriteQueueData={'container_type':'bwrap:pilot'}"
    job = make_job(tmp_path / "job", jobPars=pars)
    run_job_payload(job, "atlas")
    assert not job.errors, _codes(job)
    assert job.overwrite_queuedata == {"container_type": "bwrap:pilot"}
    assert "overwriteQueueData" not in job.jobparams
    guard = json.loads((tmp_path / "job" / "payload_guard.json").read_text())
    assert guard["exit_code"] == 0
