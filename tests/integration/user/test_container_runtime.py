"""Containers that really run: the bubblewrap runtime, and a job of the example plug-in inside it."""

from __future__ import annotations

from fakesite import make_job, run_job_payload

from pilot.api import container as api
from pilot.api.container import ContainerSpec


def test_run_through_bwrap(tmp_path, bwrap):
    result = api.get_runtime("bwrap").run("echo inside > out.txt; cat /proc/1/cmdline | tr '\\0' ' '",
                                          ContainerSpec(workdir=str(tmp_path)), timeout=60)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out.txt").read_text() == "inside\n"
    assert "bwrap" in result.stdout  # PID 1 of the new PID namespace is bubblewrap


def test_example_plugin_runs_a_job_in_bubblewrap(tmp_path, queue, bwrap):
    queue(container_type="bwrap:pilot")
    job = make_job(tmp_path / "job", transformation="/bin/bash", swRelease="NULL", homepackage="NULL",
                   cmtConfig="NULL", jobPars="-c 'echo experiment=$EXAMPLE_EXPERIMENT container=$PILOT_CONTAINER'")
    run_job_payload(job, "example")
    stdout = (tmp_path / "job" / "payload.stdout").read_text()
    assert not job.errors and job.exitcode == 0
    assert "example experiment: job 4242" in stdout and "experiment=example container=1" in stdout


def test_example_plugin_failure_goes_through_generic_diagnosis(tmp_path, queue):
    job = make_job(tmp_path / "job", transformation="/bin/bash", swRelease="NULL", homepackage="NULL",
                   cmtConfig="NULL", jobPars="-c 'echo nope >&2; exit 4'")
    run_job_payload(job, "example")
    assert list(job.errors.codes()) == [1305] and "nope" in job.errors.first()[1]
