"""The settings of one PanDA queue (schedconfig / CRIC ``pandaqueue`` record).

``QueueData`` is a plain dataclass: Harvester and the pilot set attributes directly
(``infosys.queuedata.direct_access_lan = False``). Field values are coerced to the declared types when
the record is built; fields the pilot does not know are kept in ``params``. A value of the wrong type
or a resource limit that makes no sense (a negative ``maxtime``, ``maxwdir``, ``maxrss``, ``timefloor``,
``corecount``, ``zip_time_gap``; ``maxinputsize`` below -1; ``pledgedcpu`` below -1) raises
``CoercionError``, which the info service turns into 1341 BADQUEUECONFIGURATION (README promise).

Unit note: the external ``timefloor`` is in minutes; ``QueueData.timefloor`` is in **seconds** (as in
Pilot 2) and ``timefloor_minutes`` keeps the raw value.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional

from pilot.info.basedata import CoercionError, load_record, to_dict, to_list

logger = logging.getLogger(__name__)

#: internal field -> external names (first found wins); fields not listed use their own name
_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("nickname", "name"),
    "resource": ("panda_resource", "resource"),
    "site": ("atlas_site", "gstat", "site"),
    "platform": ("cmtconfig", "platform"),
    "es_stageout_gap": ("zip_time_gap", "es_stageout_gap"),
    "timefloor_minutes": ("timefloor",),
}

#: fields that must be present for the pilot to run (missing -> QUEUEDATANOTOK)
REQUIRED_FIELDS = ("name",)

#: fields whose value must have the right shape: a bad value is a configuration error, not a default
STRUCTURAL_FIELDS = ("copytools", "acopytools", "acopytools_schemas", "astorages", "aprotocols")


@dataclass
class QueueData:
    """One PanDA queue as the pilot sees it."""

    name: str = ""
    resource: str = ""
    site: str = ""
    platform: str = ""
    state: str = ""
    status: str = ""
    type: str = ""
    appdir: str = ""
    catchall: str = ""
    maxtime: int = 0
    timefloor_minutes: int = 0
    maxwdir: int = 0  # MB
    maxinputsize: int = 0  # MB; -1 disables the input space check
    maxrss: int = 0  # MB
    corecount: int = 1
    pledgedcpu: int = 0
    es_stageout_gap: int = 0  # seconds
    copytools: dict = field(default_factory=dict)  # tool name -> {setup: ...}
    acopytools: dict = field(default_factory=dict)  # activity -> [tool names]
    acopytools_schemas: dict = field(default_factory=dict)  # activity -> [schemes] or tool -> [schemes]
    astorages: dict = field(default_factory=dict)  # activity -> [ddmendpoint names]
    aprotocols: dict = field(default_factory=dict)
    direct_access_lan: bool = False
    direct_access_wan: bool = False
    allow_lan: bool = True
    allow_wan: bool = False
    use_pcache: bool = False
    is_cvmfs: bool = True
    container_type: dict = field(default_factory=dict)  # user (pilot/wrapper) -> container tool
    container_options: str = ""
    params: dict = field(default_factory=dict)  # every field the pilot does not model

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: dict) -> "QueueData":
        """Build from an external record; raise ``CoercionError`` listing fields of the wrong type."""
        if not isinstance(data, dict):
            raise CoercionError(f"queuedata is not an object: {type(data).__name__}")
        known, params, problems = load_record(cls, _prepare(data), _ALIASES)
        _check_problems(problems, strict=True)
        obj = cls(**known)
        obj.params = params
        _check_problems(obj.limit_problems(), strict=True)
        obj.clean()
        return obj

    def apply_overrides(self, overrides: Optional[dict]) -> None:
        """Apply ``--overwriteQueueData``-style settings (external or internal names, any value type)."""
        if not overrides:
            return
        overrides = dict(overrides)
        internal = {f.name for f in fields(self)} - {"params"}
        # internal names that are not also external names are accepted too (e.g. 'platform', 'site')
        renamed = {}
        for key, value in overrides.items():
            if key in internal and key not in {a for names in _ALIASES.values() for a in names}:
                renamed[_external_name(key)] = value
            else:
                renamed[key] = value
        known, params, problems = load_record(type(self), _prepare(renamed), _ALIASES)
        _check_problems(problems, strict=True)
        for key, value in known.items():
            setattr(self, key, value)
        self.params.update(params)
        _check_problems(self.limit_problems(), strict=True)
        self.clean()
        logger.info("queuedata overridden: %s", ", ".join(sorted(overrides)))

    def clean(self) -> None:
        """Derived values and defaults that depend on several fields."""
        if self.corecount < 1:
            self.corecount = 1
        if not self.es_stageout_gap:
            self.es_stageout_gap = 600 if self.pledgedcpu == -1 else 7200
        if self.container_options.strip().lower() == "none":
            self.container_options = ""
        if not self.container_options:
            opts = self.catchall_value("singularity_options")
            if opts:
                self.container_options = opts

    def limit_problems(self) -> list:
        """(field, message) for resource limits that make no sense (negative sizes and times, ...)."""
        problems = []
        for name in ("maxtime", "maxwdir", "maxrss", "timefloor_minutes", "es_stageout_gap"):
            if getattr(self, name) < 0:
                problems.append((name, f"{_external_name(name)}: negative value {getattr(self, name)}"))
        if self.maxinputsize < -1:
            problems.append(("maxinputsize", f"maxinputsize: {self.maxinputsize} (use -1 to turn the check off)"))
        if self.corecount < 0:
            problems.append(("corecount", f"corecount: negative value {self.corecount}"))
        if self.pledgedcpu < -1:
            problems.append(("pledgedcpu", f"pledgedcpu: {self.pledgedcpu} (only -1 is special)"))
        return problems

    # ------------------------------------------------------------------ queries
    @property
    def timefloor(self) -> int:
        """Seconds during which the pilot may start another job."""
        return self.timefloor_minutes * 60

    @timefloor.setter
    def timefloor(self, seconds: int) -> None:
        self.timefloor_minutes = int(seconds) // 60

    def catchall_value(self, key: str, default: Any = None) -> Any:
        """Value of ``key=value`` (or presence of a bare ``key`` -> True) in the catchall string."""
        text = self.catchall or ""
        match = re.search(rf"(?:^|[\s,;]){re.escape(key)}\s*=\s*(?:'([^']*)'|\"([^\"]*)\"|([^\s,;]*))", text)
        if match:
            return next((g for g in match.groups() if g is not None), "")
        if re.search(rf"(?:^|[\s,;]){re.escape(key)}(?:$|[\s,;])", text):
            return True
        return default

    def get_copytools(self, activity: str) -> list:
        """Tool names for ``activity`` from ``acopytools`` (empty when not configured)."""
        return list(self.acopytools.get(activity) or [])

    def is_active(self) -> bool:
        """Whether the queue accepts pilots (state ACTIVE)."""
        return (self.state or "").upper() == "ACTIVE"

    def missing_fields(self) -> list:
        """Required fields without a value."""
        return [name for name in REQUIRED_FIELDS if not getattr(self, name)]

    def __getattr__(self, name: str) -> Any:
        # unknown attributes fall back to the raw fields (e.g. ``queuedata.pilot_version``)
        params = self.__dict__.get("params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(name)


def resource_name(queuedata: Optional[QueueData], queue: str) -> str:
    """The PanDA resource (site name) the pilot reports: the queue data's ``resource``, else the queue name."""
    return str(getattr(queuedata, "resource", "") or "") or queue


def _check_problems(problems: list, strict: bool) -> None:
    """Raise for bad structural values (or any bad value when ``strict``); log the rest."""
    fatal = [msg for name, msg in problems if strict or name in STRUCTURAL_FIELDS]
    for name, msg in problems:
        if not (strict or name in STRUCTURAL_FIELDS):
            logger.warning("queuedata: ignoring bad value of %s", msg)
    if fatal:
        raise CoercionError("; ".join(fatal))


def _external_name(internal: str) -> str:
    names = _ALIASES.get(internal)
    return names[0] if names else internal


def _prepare(data: dict) -> dict:
    """Normalise the fields whose external spelling differs from the internal type."""
    data = dict(data)
    if "container_type" in data and isinstance(data["container_type"], str):
        data["container_type"] = parse_container_type(data["container_type"])
    if isinstance(data.get("copytools"), (list, tuple)):
        data["copytools"] = {name: {} for name in data["copytools"]}
    elif isinstance(data.get("copytools"), str) and not data["copytools"].lstrip().startswith("{"):
        data["copytools"] = {name: {} for name in to_list(data["copytools"])}
    for key in ("acopytools", "astorages", "acopytools_schemas"):
        value = data.get(key)
        if value in (None, "", "None"):
            continue
        try:
            mapping = to_dict(value)
        except CoercionError:
            continue  # reported by load_record with the field name
        data[key] = {act: to_list(names) for act, names in mapping.items()}
    return data


def parse_container_type(value: Any) -> Dict[str, str]:
    """``'singularity:pilot;docker:wrapper'`` -> ``{'pilot': 'singularity', 'wrapper': 'docker'}`` (a dict is copied).

    The one parser of ``container_type``: the queue data keep the parsed form, the container API reads it.
    """
    if isinstance(value, dict):
        return {str(k).strip(): str(v).strip() for k, v in value.items()}
    out: Dict[str, str] = {}
    for item in str(value or "").split(";"):
        parts = item.split(":")
        if len(parts) == 2 and parts[0].strip() and parts[1].strip():
            out[parts[1].strip()] = parts[0].strip()
    return out
