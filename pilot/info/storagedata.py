"""The description of one storage endpoint (CRIC ``ddmendpoint`` record).

Protocols are listed per activity in ``arprotocols``::

    {"read_lan": [{"endpoint": "root://host:1094", "path": "/data", "flavour": "XROOTD", "id": 1}, ...],
     "write_lan": [...], "read_wan": [...], "write_wan": [...]}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional, Union

from pilot.info.basedata import CoercionError, load_record, to_dict

logger = logging.getLogger(__name__)

_ALIASES: dict[str, tuple[str, ...]] = {
    "pk": ("id", "pk"),
    "name": ("name",),
}

#: Data API activity -> storage protocol activities, in order of preference
READ_ACTIVITIES = ("read_lan", "read_wan")
WRITE_ACTIVITIES = ("write_lan", "write_wan")


@dataclass
class StorageData:
    """One storage endpoint (ddmendpoint)."""

    pk: int = 0
    name: str = ""
    type: str = ""  # e.g. DATADISK, SCRATCHDISK, OS_ES, OS_LOGS
    token: str = ""  # space token
    is_deterministic: bool = True
    state: str = ""
    site: str = ""
    rc_site: str = ""
    is_tape: bool = False
    arprotocols: dict = field(default_factory=dict)
    rprotocols: dict = field(default_factory=dict)
    resource: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    special_setup: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict, name: str = "") -> "StorageData":
        """Build from an external record (``name`` is used when the record does not carry one)."""
        if not isinstance(data, dict):
            raise CoercionError(f"storage record is not an object: {type(data).__name__}")
        known, params, problems = load_record(cls, data, _ALIASES)
        if problems:
            raise CoercionError("; ".join(msg for _, msg in problems))
        obj = cls(**known)
        obj.params = params
        if not obj.name:
            obj.name = name
        if not obj.is_tape and "TAPE" in (obj.type or "").upper():
            obj.is_tape = True
        return obj

    def apply_overrides(self, overrides: Optional[dict]) -> None:
        """Apply ``--overwriteStorageData``-style settings."""
        if not overrides:
            return
        known, params, problems = load_record(type(self), dict(overrides), _ALIASES)
        if problems:
            raise CoercionError("; ".join(msg for _, msg in problems))
        for key, value in known.items():
            setattr(self, key, value)
        self.params.update(params)

    @property
    def bucket_id(self) -> Optional[str]:
        """Object-store bucket id (``resource.bucket_id``), if any."""
        try:
            return to_dict(self.resource).get("bucket_id")
        except CoercionError:
            return None

    def get_protocols(self, activities: "tuple[str, ...] | list[str] | str") -> list:
        """Protocol dicts for the first of ``activities`` that has any (e.g. ``('write_lan', 'write_wan')``)."""
        if isinstance(activities, str):
            activities = (activities,)
        for activity in activities:
            protocols = [p for p in (self.arprotocols.get(activity) or []) if isinstance(p, dict)]
            if protocols:
                return protocols
        return []

    def get_read_protocols(self) -> list:
        """Protocols for reading, LAN first."""
        return self.get_protocols(READ_ACTIVITIES)

    def get_write_protocols(self) -> list:
        """Protocols for writing, LAN first."""
        return self.get_protocols(WRITE_ACTIVITIES)

    def protocol_settings(self, protocol_id: Union[int, str]) -> dict:
        """The ``rprotocols[id].settings`` dict (object-store keys), or {}."""
        entry = self.rprotocols.get(str(protocol_id)) or self.rprotocols.get(protocol_id) or {}
        return dict(entry.get("settings") or {}) if isinstance(entry, dict) else {}


def parse_storages(data: object) -> dict:
    """Turn a storage dump (dict keyed by name, or a list of records with ``name``) into name -> record."""
    if isinstance(data, list):
        return {rec.get("name"): rec for rec in data if isinstance(rec, dict) and rec.get("name")}
    if isinstance(data, dict):
        if "name" in data and isinstance(data.get("arprotocols"), dict):  # a single record
            return {data["name"]: data}
        return {key: rec for key, rec in data.items() if isinstance(rec, dict)}
    raise CoercionError(f"storage data is not an object or a list: {type(data).__name__}")
