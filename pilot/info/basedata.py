"""Type coercion shared by the queue and storage records.

CRIC, the PanDA schedconfig cache and hand-written override files spell the same value in several ways
(``"1"``, ``1``, ``"True"``, ``None``, a JSON string holding a dict ...). :func:`coerce` turns any of them
into the type a record field declares, so the rest of the pilot can trust ``queuedata.maxwdir`` to be
an ``int`` and ``queuedata.copytools`` to be a ``dict``.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
from typing import Any, Callable

logger = logging.getLogger(__name__)

_TRUE = {"true", "t", "yes", "y", "1", "on"}
_FALSE = {"false", "f", "no", "n", "0", "off", "", "none", "null"}


class CoercionError(ValueError):
    """A value that cannot be turned into the declared type."""


def to_bool(value: Any) -> bool:
    """Boolean from a bool, a number or a yes/no-like string."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CoercionError(f"not a boolean: {value!r}")


def to_int(value: Any) -> int:
    """Integer from a number or a numeric string; ``None``/empty/``NULL`` give 0."""
    if value is None or isinstance(value, bool):
        return int(bool(value))
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    text = str(value).strip()
    if not text or text.upper() in ("NULL", "NONE"):
        return 0
    try:
        return int(text)
    except ValueError:
        try:
            return int(float(text))
        except ValueError:
            raise CoercionError(f"not an integer: {value!r}") from None


def to_str(value: Any) -> str:
    """String; ``None`` gives ''."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _parse_text(value: str) -> Any:
    text = value.strip()
    if not text or text.upper() in ("NULL", "NONE"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise CoercionError(f"not a JSON/Python literal: {value[:80]!r}") from None


def to_dict(value: Any) -> dict:
    """Dict from a dict, a JSON/Python-literal string, or empty values."""
    if isinstance(value, str):
        value = _parse_text(value)
    if value is None or value == [] or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    raise CoercionError(f"not a dictionary: {str(value)[:80]!r}")


def to_list(value: Any) -> list:
    """List from a list/tuple, a JSON string, a comma-separated string, or a single value."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = _parse_text(text)
            return list(parsed or [])
        return [v.strip() for v in text.split(",") if v.strip()]
    return [value]


CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    bool: to_bool, int: to_int, str: to_str, dict: to_dict, list: to_list,
    "bool": to_bool, "int": to_int, "str": to_str, "dict": to_dict, "list": to_list,
}


def field_types(cls: type) -> dict[str, Callable[[Any], Any]]:
    """Map field name -> converter for the declared types of a dataclass (unknown types are kept as-is)."""
    out = {}
    for fld in dataclasses.fields(cls):
        typ = fld.type
        if isinstance(typ, str):  # postponed annotations
            typ = typ.replace("Optional[", "").rstrip("]")
        conv = CONVERTERS.get(typ)
        if conv:
            out[fld.name] = conv
    return out


def load_record(cls: type, data: dict, aliases: dict[str, tuple[str, ...]]) -> tuple[dict, dict, list]:
    """Split ``data`` into (known field values, unknown params, problems) for dataclass ``cls``.

    ``problems`` is a list of (field name, message) for values that could not be coerced; those fields
    are left out of the known values (so they keep their defaults).

    ``aliases`` maps an internal field name to the external names it is read from, first found wins;
    a field without an alias is read under its own name.
    """
    converters = field_types(cls)
    known: dict = {}
    used: set = set()
    problems: list = []
    for name, conv in converters.items():
        for ext in aliases.get(name, (name,)):
            if ext in data:
                used.add(ext)
                if name in known:
                    continue
                try:
                    known[name] = conv(data[ext])
                except CoercionError as exc:
                    problems.append((name, f"{ext}: {exc}"))
    for name, exts in aliases.items():  # aliases of fields without a converter (kept raw)
        if name not in converters:
            for ext in exts:
                if ext in data and name not in known:
                    known[name] = data[ext]
                    used.add(ext)
    params = {k: v for k, v in data.items() if k not in used}
    return known, params, problems
