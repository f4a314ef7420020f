"""The pilots under test and how each is started: same options, same server, same kind of config.

All three get the same command line (``-q DEV_QUEUE --pilot-user generic -w generic --url ... -p ...
-j managed --es-executor-type none``, plus ``-v N -x 1`` for multi-job runs: N requests per job slot,
stop at the first empty getJob reply instead of sleeping 60 s and asking again) and a configuration file named
by ``HARVESTER_PILOT_CONFIG`` that points the PanDA server, the queue and storage data URLs (PanDA
cache and CRIC forms) and the Rucio trace URL at the dev server. For the references that file is
their own packaged ``default.cfg`` with those values replaced (they read only that one file); ours
layers it over its defaults. TLS: ``X509_USER_PROXY`` (the dev server's client PEM, which also holds
its CA) and ``X509_CERT_DIR`` (the CA under its hash name).

``--es-executor-type none``: Pilot 2's stage-in thread imports ``pilot.user.<user>.metadata`` after
every stage-in when the executor type is ``generic``, and the generic plug-in has no such module, so
the thread dies and the job never runs. The option only matters for event-service jobs otherwise, so
all three get it.
"""

from __future__ import annotations

import configparser
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import PILOT2_VERSION, PILOT3_VERSION
from .install import VENV2, VENV3, VENV_OURS, site_packages

QUEUE = "DEV_QUEUE"


@dataclass(frozen=True)
class Pilot:
    """One pilot under test."""

    key: str            # pilot2, pilot3, ours, ours-link
    label: str
    reference: bool
    via_bash: bool      # job transformation /bin/bash (ours copies inputs without mode bits)
    mv_mode: Optional[str] = None  # queue copytools mv copy_type for this pilot (ours-link: symlink)

    def python_and_script(self) -> tuple[Path, Path]:
        if self.key == "pilot2":
            return VENV2 / "bin/python", site_packages(VENV2) / "pilot.py"
        if self.key == "pilot3":
            return VENV3 / "bin/python", site_packages(VENV3) / "pilot.py"
        return VENV_OURS / "bin/python", site_packages(VENV_OURS) / "pilot.py"

    def default_config(self) -> Optional[Path]:
        """The reference's packaged default.cfg (None for ours: it layers a partial file)."""
        if self.key == "pilot2":
            return site_packages(VENV2) / "pilot/util/default.cfg"
        if self.key == "pilot3":
            return site_packages(VENV3) / "pilot/util/default.cfg"
        return None


PILOTS = {
    "pilot2": Pilot("pilot2", f"Pilot 2 {PILOT2_VERSION}", True, False),
    "pilot3": Pilot("pilot3", f"Pilot 3 {PILOT3_VERSION}", True, False),
    "ours": Pilot("ours", "ours", False, False),
    "ours-link": Pilot("ours-link", "ours (mv symlink mode)", False, False, "symlink"),
}
REFERENCES = ("pilot2", "pilot3")


def config_values(http_url: str, https_url: str) -> dict:
    """The configuration values every pilot gets (section -> key -> value)."""
    return {
        "Pilot": {"pandaserver": https_url},
        "Information": {"queuedata_url": f"{http_url}/cache/schedconfig/{{pandaqueue}}.all.json",
                        "queues_url": f"{http_url}/cache/schedconfig/{{pandaqueue}}.json",
                        "storages_url": f"{http_url}/cache/ddmendpoints.json"},
        "Rucio": {"url": f"{http_url}/traces/"},
    }


def config_text(pilot: Pilot, http_url: str, https_url: str, extra: Optional[dict] = None) -> str:
    """The HARVESTER_PILOT_CONFIG file for one pilot (``extra``: more section -> key -> value)."""
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    default = pilot.default_config()
    if default is not None:
        parser.read(default)
    values_by_section = config_values(http_url, https_url)
    for section, values in (extra or {}).items():
        values_by_section.setdefault(section, {}).update(values)
    for section, values in values_by_section.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in values.items():
            parser.set(section, key, value)
    if parser.has_option("Pilot", "iddsserver"):
        parser.set("Pilot", "iddsserver", https_url)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def command(pilot: Pilot, https_url: str, getjob_requests: Optional[int] = None) -> list:
    """The pilot's command line (without the namespace prefix, which ``measure.launch`` adds)."""
    python, script = pilot.python_and_script()
    host, port = https_url.rsplit(":", 1)
    cmd = [python, script, "-q", QUEUE, "--pilot-user", "generic", "-w", "generic", "--url", host, "-p", port,
           "-j", "managed", "--es-executor-type", "none"]
    if not pilot.reference:  # the references leave their files in the launch dir: ours keeps its own dir too
        cmd += ["--cleanup", "false"]
    if getjob_requests:  # multi-job: -v job requests per slot, and stop at the first empty reply (-x 1)
        cmd += ["-v", str(getjob_requests), "-x", "1"]
    return cmd
