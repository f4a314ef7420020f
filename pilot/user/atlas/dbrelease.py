"""ATLAS plug-in: use a locally installed DBRelease instead of staging the DBRelease tarball in.

When the job parameters name ``DBRelease-<version>.tar.gz`` and ``<dbrelease dir>/<version>`` exists
locally (``$VO_ATLAS_SW_DIR/database/DBRelease``, else the CVMFS software area), the pilot writes a
small tarball of the same name into the work dir holding only ``DBRelease/<version>/setup.py`` (which
points the payload at the local installation) and a ``DBRelease/current`` link; the DBRelease input
file is then not transferred. ``ATLAS_DBREL_DWNLD`` set in the environment disables this.
"""

from __future__ import annotations

import io
import logging
import os
import re
import tarfile
import time
from typing import TYPE_CHECKING

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException

from .setup import cvmfs_root

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

_VERSION = re.compile(r"DBRelease-(\d+\.\d+\.\d+(?:\.\d+)?)\.tar\.gz")


def get_dbrelease_version(jobparams: str) -> str:
    """The DBRelease version named in the job parameters ('' when none)."""
    match = _VERSION.search(jobparams or "")
    return match.group(1) if match else ""


def get_dbrelease_dir() -> str:
    """The local DBRelease installation directory ('' when there is none)."""
    candidates = []
    if os.environ.get("VO_ATLAS_SW_DIR"):
        candidates.append(os.path.join(os.environ["VO_ATLAS_SW_DIR"], "database", "DBRelease"))
    candidates.append(os.path.join(cvmfs_root(), "atlas.cern.ch", "repo", "sw", "database", "DBRelease"))
    for path in candidates:
        if os.path.isdir(path):
            return path
    return ""


def is_dbrelease_available(version: str) -> bool:
    """True when the version is installed locally (and local use is not disabled)."""
    if not version or "ATLAS_DBREL_DWNLD" in os.environ:
        return False
    path = get_dbrelease_dir()
    return bool(path) and os.path.isdir(os.path.join(path, version))


def setup_file_content(version: str, path: str) -> str:
    """The ``setup.py`` of the local DBRelease: environment pointing at ``<path>/<version>``."""
    local = os.path.join(path, version)
    return (
        "import os\n"
        f"os.environ['DBRELEASE'] = {version!r}\n"
        f"os.environ['DATAPATH'] = {local!r} + ':' + os.environ.get('DATAPATH', '')\n"
        f"os.environ['DBRELEASE_REQUIRED'] = {version!r}\n"
        f"os.environ['DBRELEASE_REQUESTED'] = {version!r}\n"
        f"os.environ['CORAL_DBLOOKUP_PATH'] = {os.path.join(local, 'XMLConfig')!r}\n"
    )


def create_dbrelease(version: str, workdir: str) -> str:
    """Write ``DBRelease-<version>.tar.gz`` into workdir; return its path. Raises PilotException 1339."""
    path = get_dbrelease_dir()
    if not path:
        raise PilotException("no local DBRelease directory", code=ErrorCodes.DBRELEASEFAILURE)
    tarball = os.path.join(workdir, f"DBRelease-{version}.tar.gz")
    content = setup_file_content(version, path).encode()
    try:
        with tarfile.open(tarball, "w:gz") as tar:
            info = tarfile.TarInfo(f"DBRelease/{version}/setup.py")
            info.size = len(content)
            info.mtime = int(time.time())
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
            link = tarfile.TarInfo("DBRelease/current")
            link.type = tarfile.SYMTYPE
            link.linkname = version
            link.mtime = info.mtime
            tar.addfile(link)
    except (OSError, tarfile.TarError) as exc:
        raise PilotException(f"cannot create {tarball}: {exc}", code=ErrorCodes.DBRELEASEFAILURE) from None
    logger.info("created local DBRelease tarball %s", tarball)
    return tarball


def use_local_dbrelease(job: JobData) -> bool:
    """Create the local DBRelease tarball when possible and skip the DBRelease input; True if done."""
    version = get_dbrelease_version(job.jobparams)
    if not is_dbrelease_available(version):
        return False
    create_dbrelease(version, job.workdir)
    for spec in job.indata:
        if spec.lfn == f"DBRelease-{version}.tar.gz":
            spec.status = "no_transfer"
    return True
