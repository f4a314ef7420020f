"""The options a copytool call carries, typed and frozen.

Copytools keep the Pilot 2 call shape ``copy_in(files, **kwargs)`` / ``copy_out(files, **kwargs)``:
Harvester, Pilot 2 style callers and external copytools pass keyword arguments. Inside the pilot the
Data API (:meth:`pilot.api.data.StagingClient.tool_kwargs`) builds one :class:`CopytoolOptions` per
copytool and transfer and passes it along under :data:`OPTIONS_KEY`; a copytool reads its options
with ``opts = CopytoolOptions.from_kwargs(kwargs)``, which returns that object, or builds one from
the keywords of a caller outside the Data API. Keys the pilot does not know stay in ``extra``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, Dict, Mapping, Optional, Tuple, Union

#: the keyword under which the Data API passes the options object it built
OPTIONS_KEY = "copytool_options"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _mapping(value: Any) -> Mapping[str, Any]:
    return MappingProxyType(dict(value)) if isinstance(value, Mapping) and value else _EMPTY


def _optional_bool(value: Any) -> Optional[bool]:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off")
    return bool(value)


def _optional_int(value: Any) -> Optional[int]:
    return None if value is None or value == "" else int(value)


@dataclass(frozen=True)
class CopytoolOptions:
    """What a copytool call may be told (the keyword arguments of ``copy_in``/``copy_out``)."""

    workdir: str = ""  #: the job's work dir: local file paths are relative to it
    #: the queue's ``copytools`` (``{tool: {setup: ..., ...}}``)
    copytools: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    ddmconf: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)  #: storage data by endpoint name
    catchall: str = ""  #: the queue's catchall (``<tool>_<key>=value`` settings)
    activity: Tuple[str, ...] = ()  #: the activities of the transfer, in priority order
    stop_event: Optional[threading.Event] = None  #: set to stop the running transfer
    max_workers: int = 8  #: parallel transfers a tool may run
    input_dir: str = ""  #: mv: where the input files are (aCT/ARC)
    output_dir: str = ""  #: mv: where the outputs go (aCT/ARC)
    copy_type: Optional[str] = None  #: mv: copy, symlink or move; None when not given, '' when given empty
    mv_mode: str = ""  #: mv: Pilot 3's name of copy_type
    no_register: Optional[bool] = None  #: skip the Rucio registration (None: the tool's default)
    lifetime: Optional[int] = None  #: rucio: replica lifetime (seconds)
    #: xrdcp: extra environment of the xrdcp commands
    xrootd_env: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    http: Any = None  #: the pilot's HTTP client (gs)
    communicator: Any = None  #: the PanDA communicator (objectstore keys)
    job: Any = None  #: the job the files belong to
    trace_report: Any = None
    trace_batch: Any = None
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)  #: every other keyword, as given

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> "CopytoolOptions":
        """The options of a copytool call: the Data API's object, else built from the keywords."""
        given = kwargs.get(OPTIONS_KEY)
        if isinstance(given, CopytoolOptions):
            return given
        known: Dict[str, Any] = {}
        extra: Dict[str, Any] = {}
        names = _FIELD_NAMES
        for key, value in kwargs.items():
            if key == OPTIONS_KEY:
                continue
            if key in names:
                known[key] = value
            else:
                extra[key] = value
        activity = known.pop("activity", ())
        copy_type_given = "copy_type" in known
        copy_type = known.pop("copy_type", None)
        return cls(
            workdir=str(known.pop("workdir", "") or ""),
            copytools=_mapping(known.pop("copytools", None)),
            ddmconf=_mapping(known.pop("ddmconf", None)),
            catchall=str(known.pop("catchall", "") or ""),
            activity=(activity,) if isinstance(activity, str) else tuple(activity or ()),
            stop_event=known.pop("stop_event", None),
            max_workers=max(1, int(known.pop("max_workers", None) or 8)),
            input_dir=str(known.pop("input_dir", "") or ""),
            output_dir=str(known.pop("output_dir", "") or ""),
            copy_type=str(copy_type or "") if copy_type_given else None,
            mv_mode=str(known.pop("mv_mode", "") or ""),
            no_register=_optional_bool(known.pop("no_register", None)),
            lifetime=_optional_int(known.pop("lifetime", None)),
            xrootd_env=_mapping(known.pop("xrootd_env", None)),
            extra=MappingProxyType(extra) if extra else _EMPTY,
            **known,  # http, communicator, job, trace_report, trace_batch: as given
        )

    @classmethod
    def of(cls, value: Union["CopytoolOptions", Mapping[str, Any]]) -> "CopytoolOptions":
        """``value`` itself, or the options of a keyword dict (helpers called either way)."""
        return value if isinstance(value, CopytoolOptions) else cls.from_kwargs(value)

    def call_kwargs(self, **changes: Any) -> Dict[str, Any]:
        """Keywords for a call to another copytool: these options with ``changes``, as Pilot 2 keywords and
        as the object (under :data:`OPTIONS_KEY`)."""
        changes.update({key: _mapping(changes[key]) for key in ("xrootd_env", "copytools", "ddmconf")
                        if key in changes})
        opts = replace(self, **changes) if changes else self
        kwargs: Dict[str, Any] = dict(opts.extra)
        kwargs.update((name, getattr(opts, name)) for name in _FIELD_NAMES)
        kwargs["activity"] = list(opts.activity)
        if opts.copy_type is None:
            del kwargs["copy_type"]  # not given: the tool's own setting applies
        kwargs[OPTIONS_KEY] = opts
        return kwargs

    def get(self, key: str, default: Any = None) -> Any:
        """An option by its keyword name (a field or an ``extra`` key); ``default`` when absent or empty."""
        value = getattr(self, key) if key in _FIELD_NAMES else self.extra.get(key)
        empty = value is None or value == "" or (isinstance(value, (tuple, Mapping)) and not value)
        return default if empty else value

    def setting(self, tool: str, key: str, default: Any = None) -> Any:
        """A tool setting: keyword ``key``, else the queue's ``copytools[tool][key]``, else the queue
        catchall ``<tool>_<key>=value``, else ``default``."""
        value = self.get(key)
        if value is not None:
            return value
        entry = self.copytools.get(tool) or {}
        if isinstance(entry, Mapping) and entry.get(key) not in (None, ""):
            return entry[key]
        match = re.search(rf"(?:^|[\s,;]){re.escape(tool)}_{re.escape(key)}\s*=\s*([^\s,;]+)", self.catchall)
        if match:
            return match.group(1).strip("'\"")
        return default

    def setup(self, *tools: str) -> str:
        """The ``setup`` of the first of ``tools`` the queue's ``copytools`` gives one for ('' when none)."""
        for tool in tools:
            entry = self.copytools.get(tool) or {}
            setup = str(entry.get("setup") or "") if isinstance(entry, Mapping) else ""
            if setup:
                return setup
        return ""


_FIELD_NAMES = frozenset(f.name for f in fields(CopytoolOptions)) - {"extra"}
