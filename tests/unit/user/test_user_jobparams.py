"""The pilot's tokens in jobPars (compat 4.5) are removed and acted upon."""

from __future__ import annotations

from pilot.info.jobdata import JobData
from pilot.info.queuedata import QueueData
from pilot.user.generic.common import validate
from pilot.user.generic.jobdata import (
    filter_job_parameters, job_queuedata, jobparams_postfiltering, jobparams_prefiltering,
)


def _job(pars: str, **extra) -> JobData:
    return JobData.from_definition({"PandaID": "1", "transformation": "run.sh", "jobPars": pars,
                                    "inFiles": "a.root", "GUID": "G", "scopeIn": "s", **extra})


def test_overwrite_queuedata_is_taken_out_and_applied_to_a_copy():
    job = _job("--in a.root --overwriteQueueData={'maxwdir': 1234, 'container_type': 'bwrap:pilot'} --out b")
    assert filter_job_parameters(job) == "--in a.root --out b"
    assert job.overwrite_queuedata == {"maxwdir": 1234, "container_type": "bwrap:pilot"}
    base = QueueData.from_dict({"nickname": "Q", "maxwdir": 10})
    patched = job_queuedata(job, base)
    assert patched.maxwdir == 1234 and patched.container_type == {"pilot": "bwrap"}
    assert base.maxwdir == 10 and base.container_type == {}


def test_storage_override_and_pilot1_spelling():
    job = _job("x --overwriteStorageData={'DISK': {'token': 't'}} --overwriteQueuedata={allowfax=False} y")
    assert filter_job_parameters(job) == "x y"
    assert job.overwrite_storagedata == {"DISK": {"token": "t"}}
    assert not getattr(job, "overwrite_queuedata", None)


def test_zip_map_and_container_image():
    job = _job("-a 1 '<ZIP_MAP>z.zip:a.root,b.root</ZIP_MAP>' --containerImage docker://atlas/athena:22 -b 2")
    assert filter_job_parameters(job) == "-a 1 -b 2"
    assert job.zipmap == "z.zip:a.root,b.root"
    assert job.imagename == "docker://atlas/athena:22"
    job = _job("--containerImage=/cvmfs/unpacked/img run")
    filter_job_parameters(job)
    assert job.imagename == "/cvmfs/unpacked/img" and job.jobparams == "run"


def test_access_mode_switches():
    job = _job("--accessmode=direct -x")
    filter_job_parameters(job)
    assert job.jobparams == "-x" and job.accessmode == "direct" and job.indata[0].accessmode == "direct"
    job = _job("--useLocalIO -x")
    filter_job_parameters(job)
    assert job.jobparams == "--useLocalIO -x" and job.indata[0].accessmode == "copy"


def test_filtering_is_idempotent_and_plain_parameters_survive():
    pars = "--maxEvents=10 --inputEVNTFile=EVNT.pool.root --preExec 'a=1;b={2}'"
    job = _job(pars)
    assert filter_job_parameters(job) == pars
    assert filter_job_parameters(job) == pars


def test_athenaopts_are_protected_from_filtering():
    pars = 'Reco --athenaopts "HITtoRDO:--nprocs=$ATHENA_CORE_NUMBER" --x'
    exclusions, text = jobparams_prefiltering(pars)
    assert "--athenaopts" not in text and len(exclusions) == 1
    assert jobparams_postfiltering(text, exclusions) == pars


def test_validate_splits_the_alrb_platform():
    job = _job("x", cmtConfig="x86_64-centos7-gcc8-opt@centos7")
    validate(job)
    assert job.platform == "x86_64-centos7-gcc8-opt" and job.alrbuserplatform == "centos7"
