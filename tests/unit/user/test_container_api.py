"""The Container API: runtime choice, command lines, options, and container failures as codes."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from pilot.api import container as api
from pilot.api.container import Bind, ContainerSpec
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException


def test_container_type_pairs():
    assert api.parse_container_type("singularity:pilot;docker:wrapper; bwrap:user") == {
        "pilot": "singularity", "wrapper": "docker", "user": "bwrap"}
    assert api.parse_container_type("") == {} and api.parse_container_type("junk;a:") == {}
    queue = SimpleNamespace(container_type={"user": "bwrap", "middleware": "apptainer"})
    assert api.payload_container_tool(queue, SimpleNamespace(is_analysis=True)) == "bwrap"
    assert api.payload_container_tool(queue, SimpleNamespace(is_analysis=False)) == ""
    assert api.payload_container_tool(SimpleNamespace(container_type="apptainer:pilot"), None) == "apptainer"


def test_container_options_binds_and_rest(monkeypatch):
    monkeypatch.setenv("SCRATCH", "/scratch/x")
    binds, rest = api.parse_container_options("-B /cvmfs,$SCRATCH:/data:ro --contain --bind=/home -e")
    assert [(b.source, b.destination, b.readonly) for b in binds] == [
        ("/cvmfs", "/cvmfs", False), ("/scratch/x", "/data", True), ("/home", "/home", False)]
    assert rest == ["--contain", "-e"]
    with pytest.raises(PilotException) as info:
        api.parse_container_options("-B 'unclosed")
    assert info.value.code == ErrorCodes.BADQUEUECONFIGURATION


def test_unknown_and_missing_runtimes(monkeypatch):
    with pytest.raises(PilotException) as info:
        api.get_runtime("docker")
    assert info.value.code == ErrorCodes.QUEUENOTSETUPFORCONTAINERS
    monkeypatch.setattr(shutil, "which", lambda name: None)
    expected = {"apptainer": ErrorCodes.APPTAINERNOTINSTALLED, "singularity": ErrorCodes.SINGULARITYNOTINSTALLED,
                "bwrap": ErrorCodes.SINGULARITYNOTINSTALLED}
    for name, code in expected.items():
        runtime = api.get_runtime(name)
        assert not runtime.available()
        with pytest.raises(PilotException) as info:
            runtime.argv("true", ContainerSpec(image="/", workdir="/"))
        assert info.value.code == code


def test_apptainer_command_line(tmp_path):
    image = tmp_path / "image.sif"
    image.write_text("")
    proxy = tmp_path / "x509"
    proxy.write_text("secret")
    spec = ContainerSpec(image=str(image), workdir=str(tmp_path), cleanenv=True,
                         binds=[Bind("/cvmfs", readonly=True), Bind(str(tmp_path / "absent"), optional=True)],
                         env={"A": "1"}, masks=[str(proxy)], options=["--contain"])
    argv = api.ApptainerRuntime(executable="/bin/true").argv("echo hi", spec)
    assert argv[:3] == ["/bin/true", "exec", "--cleanenv"]
    assert ["-B", "/cvmfs:/cvmfs:ro"] == argv[3:5]
    assert f"/dev/null:{proxy}:ro" in argv and str(tmp_path / "absent") not in " ".join(argv)
    assert argv[argv.index("--pwd") + 1] == str(tmp_path) and ["--env", "A=1"] == argv[argv.index("--env"):][:2]
    assert argv[-5:] == ["--contain", str(image), "/bin/bash", "-c", "echo hi"]
    with pytest.raises(PilotException) as info:
        api.ApptainerRuntime(executable="/bin/true").argv("x", ContainerSpec(image=str(tmp_path / "none.sif")))
    assert info.value.code == ErrorCodes.IMAGENOTFOUND
    with pytest.raises(PilotException):
        api.ApptainerRuntime(executable="/bin/true").argv("x", ContainerSpec())


def test_bwrap_command_line_masks_credentials(tmp_path):
    secrets = tmp_path / "tokens"
    secrets.mkdir()
    proxy = tmp_path / "x509"
    proxy.write_text("secret")
    spec = ContainerSpec(workdir=str(tmp_path / "job"), masks=[str(proxy), str(secrets), str(tmp_path / "gone")],
                         binds=[Bind("/cvmfs", readonly=True, optional=True)], env={"K": "v"})
    argv = api.BubblewrapRuntime(executable="/bin/true").argv("run it", spec)
    text = " ".join(argv)
    assert argv[1:3] == ["--ro-bind", "/"] and "--tmpfs /tmp" in text
    assert "--ro-bind-try /cvmfs /cvmfs" in text
    assert f"--ro-bind /dev/null {proxy}" in text and f"--tmpfs {secrets}" in text and "gone" not in text
    # masks come after the work dir bind, so they win
    assert text.index(f"--bind {tmp_path / 'job'}") < text.index(f"--ro-bind /dev/null {proxy}")
    assert "--unshare-pid" in argv and "--die-with-parent" in argv and "--setenv K v" in text
    assert argv[-4:] == ["--", "/bin/bash", "-c", "run it"]
    with pytest.raises(PilotException) as info:
        api.BubblewrapRuntime(executable="/bin/true").argv("x", ContainerSpec(image="docker://img"))
    assert info.value.code == ErrorCodes.IMAGENOTFOUND


def test_select_image_order():
    job = SimpleNamespace(imagename="", containeroptions={"containerImage": "img2"}, container_name="img3")
    assert api.select_image(job) == "img2"
    job.imagename = "img1"
    assert api.select_image(job) == "img1"
    assert api.select_image(SimpleNamespace(container_name="NULL"), default="d") == "d"


@pytest.mark.parametrize("stderr, code", [
    ("FATAL:   Failed to create user namespace: operation not allowed", ErrorCodes.SINGULARITYFAILEDUSERNAMESPACE),
    ("ERROR: Failed invoking the NEWUSER namespace runtime", ErrorCodes.SINGULARITYNEWUSERNAMESPACE),
    ("WARNING: Not mounting requested bind point (already mounted in container): /cvmfs",
     ErrorCodes.SINGULARITYBINDPOINTFAILURE),
    ("FATAL: container creation failed: no more available loop devices", ErrorCodes.SINGULARITYNOLOOPDEVICES),
    ("FATAL: container creation failed: failed to mount image", ErrorCodes.SINGULARITYIMAGEMOUNTFAILURE),
    ("FATAL:   operation not permitted", ErrorCodes.SINGULARITYGENERALFAILURE),
    ("bash: singularity: command not found", ErrorCodes.SINGULARITYNOTINSTALLED),
    ("bash: apptainer: command not found", ErrorCodes.APPTAINERNOTINSTALLED),
    ("bwrap: Creating new namespace failed: Operation not permitted", ErrorCodes.SINGULARITYNEWUSERNAMESPACE),
    ("bwrap: setting up uid map: Permission denied", ErrorCodes.SINGULARITYFAILEDUSERNAMESPACE),
    ("bwrap: Can't find source path /nowhere: No such file or directory", ErrorCodes.SINGULARITYBINDPOINTFAILURE),
    ("fork: Resource temporarily unavailable", ErrorCodes.SINGULARITYRESOURCEUNAVAILABLE),
])
def test_container_errors_are_classified(stderr, code):
    assert api.classify_container_error(255, f"some output\n{stderr}\n")[0] == code


def test_payload_errors_are_not_container_errors():
    assert api.classify_container_error(1, "rm: cannot remove 'x': Operation not permitted") == (0, "")
    assert api.classify_container_error(1, "") == (0, "")
