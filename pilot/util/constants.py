"""Version and fixed names shared across the pilot.

The version lives in the four-part ``PILOTVERSION`` file (``release.version.revision.build``, as in
Pilot 2/3): at the top of the source tree and of the release tarball, and inside the package of an
installed wheel (``pilot/PILOTVERSION``, copied there by ``setup.py``). It goes into ``pilotID``, the
User-Agent and ``--version``. How the build number advances: ``doc/source/usage.rst`` (Releases).
"""

import os
import re

_VERSION_FORMAT = re.compile(r"^(\d+)\.(\d+)\.(\d+)\.(\d+)$")


def read_pilot_version() -> tuple:
    """``(release, version, revision, build)`` from the PILOTVERSION file; ("0", "0", "0", "0") without one."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for path in (os.path.join(package, "PILOTVERSION"), os.path.join(os.path.dirname(package), "PILOTVERSION")):
        try:
            with open(path, encoding="utf-8") as handle:
                match = _VERSION_FORMAT.match(handle.read(64).strip())
        except OSError:
            continue
        if match:
            return match.groups()
    return ("0", "0", "0", "0")


RELEASE, VERSION, REVISION, BUILD = read_pilot_version()

PILOT_VERSION = f"{RELEASE}.{VERSION}.{REVISION}.{BUILD}"

# exit status of the pilot process when more than one job was processed
SUCCESS = 0
FAILURE = 1

# pilot timing keys (stored in pilot_timing.json)
PILOT_START_TIME = "PILOT_START_TIME"
PILOT_PRE_GETJOB = "PILOT_PRE_GETJOB"
PILOT_POST_GETJOB = "PILOT_POST_GETJOB"
PILOT_PRE_SETUP = "PILOT_PRE_SETUP"
PILOT_POST_SETUP = "PILOT_POST_SETUP"
PILOT_PRE_STAGEIN = "PILOT_PRE_STAGEIN"
PILOT_POST_STAGEIN = "PILOT_POST_STAGEIN"
PILOT_PRE_PAYLOAD = "PILOT_PRE_PAYLOAD"
PILOT_POST_PAYLOAD = "PILOT_POST_PAYLOAD"
PILOT_PRE_STAGEOUT = "PILOT_PRE_STAGEOUT"
PILOT_POST_STAGEOUT = "PILOT_POST_STAGEOUT"
PILOT_PRE_LOG_TAR = "PILOT_PRE_LOG_TAR"
PILOT_POST_LOG_TAR = "PILOT_POST_LOG_TAR"
PILOT_PRE_FINAL_UPDATE = "PILOT_PRE_FINAL_UPDATE"
PILOT_POST_FINAL_UPDATE = "PILOT_POST_FINAL_UPDATE"
PILOT_END_TIME = "PILOT_END_TIME"
PILOT_KILL_SIGNAL = "PILOT_KILL_SIGNAL"
