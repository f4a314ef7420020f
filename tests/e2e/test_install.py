"""The pilot as users and sites get it: a wheel in a fresh venv, the demo on a plain Python.

Real processes only: the wheel is built from a copy of this tree, installed offline into a new
``python -m venv`` (no site packages) and the ``pilot`` console script runs a job against the dev
server; the demo runs on a Python that has nothing installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pilot.devserver.samples import sample_job

from .conftest import REPO, TEST_CONFIG, pilot_command

#: a Python with nothing but pip/setuptools installed (the CI image's pyenv); else this interpreter's base
PLAIN_PYTHON = os.environ.get("PILOT_PLAIN_PYTHON", "/root/.pyenv/versions/3.9.18/bin/python3")


def plain_python() -> str:
    """The oldest supported Python with nothing installed: the image's pyenv 3.9, else the 3.9 that
    scripts/test.sh found ($PILOT_TEST_PYTHON), else the base interpreter of this venv."""
    for candidate in (PLAIN_PYTHON, os.environ.get("PILOT_TEST_PYTHON", "")):
        if candidate and os.path.exists(candidate):
            return candidate
    return str(Path(sys.base_prefix) / "bin" / "python3")


def clean_env(**extra: str) -> dict:
    """What a batch system gives a job: PATH, HOME and little else (no PYTHONPATH, no venv)."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def copy_source(dest: Path) -> Path:
    """The files a release is built from (not the work tree itself: builds write into their source)."""
    dest.mkdir(parents=True)
    for name in ("setup.py", "setup.cfg", "README.md", "PILOTVERSION", "pilot.py"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "pilot", dest / "pilot", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The pilot's wheel, built offline with this interpreter's setuptools and wheel."""
    base = tmp_path_factory.mktemp("wheel")
    src = copy_source(base / "src")
    out = base / "dist"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "--no-index", "-w", str(out), str(src)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A fresh venv (no system site packages) with only the pilot's wheel in it."""
    path = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([plain_python(), "-m", "venv", str(path)], check=True, timeout=300, env=clean_env())
    result = subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                             str(wheel)], capture_output=True, text=True, timeout=300, env=clean_env(), check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return path


def test_wheel_installs_the_pilot_command_and_python_m_pilot(venv, tmp_path):
    version = (REPO / "PILOTVERSION").read_text().strip()
    assert not (venv / "bin" / "pilot.py").exists(), "pilot.py in bin/ would shadow the pilot package"
    for cmd in ([str(venv / "bin" / "pilot"), "--version"], [str(venv / "bin" / "python"), "-m", "pilot", "--version"]):
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=clean_env(),
                                check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"PanDA pilot {version}"
    # the installed package is the one that runs (not this source tree)
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import pilot.main; print(pilot.main.__file__)"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path, env=clean_env(), check=True)
    assert where.stdout.strip().startswith(str(venv)), where.stdout


@pytest.mark.parametrize("scheme", ["--user", "--prefix"])
def test_user_and_system_style_installs_give_working_commands(wheel, tmp_path, scheme):
    """``pip install --user`` and a system-style install (``--prefix``, as into /usr/local): the console
    script lands in a bin/ next to nothing that shadows the package."""
    base = tmp_path / "base"
    python = plain_python()
    env = clean_env(PYTHONUSERBASE=str(base))
    target = ["--user"] if scheme == "--user" else ["--prefix", str(base)]
    result = subprocess.run([python, "-m", "pip", "install", "-q", *target, "--no-deps", "--no-index",
                             "--no-warn-script-location", str(wheel)],
                            capture_output=True, text=True, timeout=300, env=env, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (base / "bin" / "pilot").exists() and not (base / "bin" / "pilot.py").exists()
    if scheme == "--prefix":  # the prefix's site-packages is on the path, as /usr/local's is for the system Python
        site = next(base.glob("lib/python3*/site-packages"))
        env = clean_env(PYTHONPATH=str(site))
    version = (REPO / "PILOTVERSION").read_text().strip()
    for cmd in ([str(base / "bin" / "pilot"), "--version"], [python, "-m", "pilot", "--version"]):
        got = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env, check=False)
        assert got.returncode == 0 and got.stdout.strip() == f"PanDA pilot {version}", got.stderr


def test_job_through_the_installed_console_script(venv, devserver, tmp_path):
    job = sample_job(devserver.storage_dir)
    pandaid = devserver.submit(job)
    work = tmp_path / "launch"
    work.mkdir()
    cfg = work / "test.cfg"
    cfg.write_text(TEST_CONFIG + f"\n[Rucio]\nurl: {devserver.url}/traces/\n")
    cmd = [str(venv / "bin" / "pilot")] + pilot_command(devserver, work, cfg, https=True)[2:]
    cmd += ["--cacert", str(devserver.cacert)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=work, env=clean_env(),
                            check=False)
    record = devserver.wait_final(pandaid, timeout=30)
    assert result.returncode == 0, result.stderr[-4000:]
    assert record["state"] == "finished", result.stderr[-4000:]
    version = (REPO / "PILOTVERSION").read_text().strip()
    assert devserver.updates(pandaid)[-1]["fields"]["pilotID"].endswith(f"|{version}")
    assert "pilot summary" in result.stderr


def test_demo_on_a_plain_python(tmp_path):
    python = plain_python()
    probe = subprocess.run([python, "-I", "-c", "import cryptography"], capture_output=True, timeout=60,
                           env=clean_env(), check=False)
    assert probe.returncode != 0, f"{python} has cryptography: this test needs a Python without packages"
    result = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh"), "--dir", str(tmp_path / "demo")],
                            capture_output=True, text=True, timeout=300, env=clean_env(PYTHON=python), check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "DEMO OK" in result.stdout
    log = (tmp_path / "demo" / "server" / "devserver.log").read_text(errors="replace")
    assert "with the openssl command" in log  # the TLS material came from openssl, not cryptography
