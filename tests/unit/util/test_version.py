"""The four-part PILOTVERSION file: read by constants, sent in pilotID and the User-Agent, advanced by
``scripts/make-dist.sh --bump`` (make bump-build)."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path
from types import SimpleNamespace

from pilot.util.constants import BUILD, PILOT_VERSION, read_pilot_version
from pilot.util.https import user_agent
from pilot.workflow.generic import pilot_id

REPO = Path(__file__).resolve().parents[3]


def test_version_comes_from_the_file_and_reaches_the_wire():
    text = (REPO / "PILOTVERSION").read_text().strip()
    assert PILOT_VERSION == text and len(text.split(".")) == 4 and BUILD == text.split(".")[3]
    assert read_pilot_version() == tuple(text.split("."))
    assert user_agent().startswith(f"pilot/{text} (Python ")
    node = SimpleNamespace(batch_system="SLURM")
    assert pilot_id(SimpleNamespace(version_tag="PR"), node).endswith(f"|SLURM|PR|{text}")


def test_bump_advances_the_build_number_in_the_file_and_the_tarball(tmp_path):
    src = tmp_path / "src"
    (src / "scripts").mkdir(parents=True)
    for name in ("pilot.py", "PILOTVERSION", "README.md", "scripts/make-dist.sh", "scripts/pilot-wrapper.sh"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "pilot", src / "pilot", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "PILOTVERSION").write_text("3.4.5.6\n")
    result = subprocess.run(["bash", "scripts/make-dist.sh", "--bump", "--out", str(tmp_path / "out")], cwd=src,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert (src / "PILOTVERSION").read_text().strip() == "3.4.5.7"
    assert result.stdout.strip().endswith("pilot-3.4.5.7.tar.gz")
    with tarfile.open(tmp_path / "out" / "pilot.tar.gz") as tar:
        assert tar.extractfile("./PILOTVERSION").read().decode().strip() == "3.4.5.7"
        names = tar.getnames()
    assert "./pilot.py" in names and "./pilot/main.py" in names and "./pilot/util/default.cfg" in names
    assert not [n for n in names if "__pycache__" in n]
    (src / "PILOTVERSION").write_text("3.4.5\n")
    bad = subprocess.run(["bash", "scripts/make-dist.sh", "--out", str(tmp_path / "out2")], cwd=src,
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2 and "release.version.revision.build" in bad.stderr
