"""The description of one file a job reads or writes (an input, an output or the log).

``FileSpec`` is the record the Data API and the copytools pass around. Its field names follow the
Pilot 2 Data API, because Harvester builds these objects itself and reads them back.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Optional

logger = logging.getLogger(__name__)

#: values of ``FileSpec.status`` that mean the file is usable by the payload
TRANSFERRED_STATES = ("transferred", "remote_io", "no_transfer")


@dataclass
class FileSpec:
    """One input, output or log file of a job."""

    lfn: str = ""
    guid: str = ""
    filesize: int = 0
    checksum: dict = field(default_factory=dict)  # {'adler32': ..., 'md5': ...}
    scope: str = ""
    dataset: str = ""
    ddmendpoint: str = ""
    ddmendpoint_alt: Optional[str] = None  # alternative storage for stage-out
    accessmode: str = ""  # 'direct' or 'copy' ('' = undecided)
    allow_lan: bool = True
    allow_wan: bool = False
    direct_access_lan: bool = False
    direct_access_wan: bool = False
    storage_token: str = ""
    filetype: str = "input"  # input, output or log
    replicas: Optional[list] = None
    replica_source: str = ""  # 'rucio' (list_replicas) or 'storage' (the job's LAN storage, no lookup)
    protocols: Optional[list] = None
    surl: str = ""
    turl: str = ""
    domain: str = ""  # lan or wan, set when the replica is chosen
    mtime: int = 0
    status: Optional[str] = None
    status_code: int = 0
    inputddms: list = field(default_factory=list)
    workdir: str = ""
    protocol_id: Optional[int] = None
    is_tar: bool = False
    ddm_activity: Optional[list] = None
    prodDBlockToken: str = ""  # noqa: N815 (server field name)
    destinationDblock: str = ""  # noqa: N815
    destinationDBlockToken: str = ""  # noqa: N815
    dispatchDblock: str = ""  # noqa: N815
    is_altstaged: bool = False
    transfer_error: str = ""  # last error text, for diagnostics
    remote_checksum: dict = field(default_factory=dict)  # checksum reported by the storage after a transfer

    def __post_init__(self) -> None:
        self.normalize()

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "FileSpec":
        """Build a FileSpec from keyword arguments, ignoring unknown names (Harvester passes extras)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            logger.debug("FileSpec ignores unknown fields: %s", ", ".join(unknown))
        spec = cls(**{k: v for k, v in kwargs.items() if k in known})
        spec.normalize()
        return spec

    def normalize(self) -> None:
        """Coerce types (the server sends strings) and apply the special LFN prefixes."""
        try:
            self.filesize = int(self.filesize or 0)
        except (TypeError, ValueError):
            self.filesize = 0
        if isinstance(self.checksum, str):
            self.checksum = parse_checksum(self.checksum)
        self.checksum = dict(self.checksum or {})
        if self.lfn.startswith("zip://"):
            self.lfn = self.lfn[len("zip://"):]
            self.is_tar = True
        elif self.lfn.startswith("gs://"):
            self.surl = self.lfn
            self.lfn = self.lfn.rstrip("/").rsplit("/", 1)[-1]

    def get_checksum(self, preferred: str = "adler32") -> tuple[Optional[str], Optional[str]]:
        """Return (value, type) of the preferred checksum, else of any checksum known."""
        if self.checksum.get(preferred):
            return self.checksum[preferred], preferred
        for kind, value in self.checksum.items():
            if value:
                return value, kind
        return None, None

    @property
    def is_transferred(self) -> bool:
        """True when the file needs no further transfer."""
        return self.status in TRANSFERRED_STATES and not self.status_code

    def is_directaccess(self, ensure_replica: bool = True, allowed_replica_schemas: Optional[list] = None) -> bool:
        """Whether this input may be read remotely by the payload instead of being copied."""
        if self.filetype != "input" or self.accessmode == "copy" or self.is_tar:
            return False
        if self.prodDBlockToken == "local":
            return False
        if ensure_replica:
            allowed = allowed_replica_schemas or ["root", "davs", "https"]
            if not self.turl or not any(self.turl.startswith(f"{s}://") for s in allowed):
                return False
        return True

    # --- Harvester/pilot2 compatibility ---------------------------------------------------------
    def as_dict(self) -> dict:
        """Plain dictionary of all fields."""
        return dataclasses.asdict(self)

    def __repr__(self) -> str:
        return (f"FileSpec(lfn={self.lfn!r}, scope={self.scope!r}, type={self.filetype}, size={self.filesize}, "
                f"status={self.status}, status_code={self.status_code})")


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(FileSpec))
_dataclass_init = FileSpec.__init__


def _tolerant_init(self: FileSpec, *args: Any, **kwargs: Any) -> None:
    """The dataclass ``__init__`` that ignores unknown keywords (Harvester passes e.g. ``type='input'``).

    ``type`` in (input, output, log) is taken as ``filetype`` when that is not given.
    """
    unknown = {k: kwargs.pop(k) for k in list(kwargs) if k not in _FIELD_NAMES}
    if unknown.get("type") in ("input", "output", "log") and "filetype" not in kwargs:
        kwargs["filetype"] = unknown["type"]
    if unknown:
        logger.debug("FileSpec ignores unknown fields: %s", ", ".join(sorted(unknown)))
    _dataclass_init(self, *args, **kwargs)


_tolerant_init.__wrapped__ = _dataclass_init  # type: ignore[attr-defined]  # for inspect.signature
FileSpec.__init__ = _tolerant_init  # type: ignore[method-assign]  # Pilot 2 callers pass unknown keys

_CHECKSUM_PREFIXES = {"ad": "adler32", "md": "md5"}


def parse_checksum(value: str) -> dict:
    """Parse a server checksum string: ``ad:1234abcd``, ``md:...``, or a bare value meaning adler32."""
    value = (value or "").strip()
    if not value or value.upper() == "NULL":
        return {}
    if ":" in value:
        prefix, _, rest = value.partition(":")
        kind = _CHECKSUM_PREFIXES.get(prefix.lower(), prefix.lower())
        return {kind: rest}
    return {"adler32": value}
