"""Failure injection: rules that make chosen endpoints fail, slow down or garble their replies.

A rule names an endpoint (the PanDA method such as ``updateJob``, an information endpoint such as
``schedconfig``, or ``*`` for every non-admin endpoint), an action, and how many matching requests it
applies to. Admin endpoints are never affected, so a test can always clear its rules.

Actions:

``status``     reply with HTTP status ``status`` (default 500) and a short JSON error.
``delay``      wait ``delay`` seconds, then handle the request normally.
``drop``       close the connection without any reply.
``malformed``  reply 200 with a body that is not JSON.
``partial``    reply 200 with the first half of the real JSON reply.

``process`` says whether the request is handled (and recorded as handled) before the failure is
applied: the default is False for ``status`` and ``drop`` (the request is lost) and True for
``malformed`` and ``partial`` (the reply is lost). ``process=True`` with ``drop`` models a server
that stored an update but whose answer never reached the pilot, the case an outbox must survive.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field, fields
from typing import Any, Optional

ACTIONS = ("status", "delay", "drop", "malformed", "partial")
_PROCESS_DEFAULT = {"status": False, "drop": False, "malformed": True, "partial": True, "delay": True}


@dataclass
class Rule:
    """One failure-injection rule with its counters."""

    method: str = "*"
    action: str = "status"
    status: int = 500
    delay: float = 1.0
    count: Optional[int] = None
    after: int = 0
    process: Optional[bool] = None
    id: int = 0
    seen: int = 0
    applied: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate and normalise the fields."""
        if self.action not in ACTIONS:
            raise ValueError(f"unknown injection action {self.action!r} (known: {', '.join(ACTIONS)})")
        if not self.method:
            raise ValueError("injection rule needs a method ('*' for all)")
        self.status = int(self.status)
        self.delay = float(self.delay)
        self.after = int(self.after)
        self.count = None if self.count is None else int(self.count)
        if self.delay < 0 or self.after < 0 or (self.count is not None and self.count < 0):
            raise ValueError("delay, after and count must not be negative")
        if self.process is None:
            self.process = _PROCESS_DEFAULT[self.action]

    @property
    def exhausted(self) -> bool:
        """True once the rule has been applied ``count`` times."""
        return self.count is not None and self.applied >= self.count

    def consider(self, name: str) -> bool:
        """Count a request for ``name`` and say whether this rule fires for it."""
        if self.method not in ("*", name):
            return False
        with self._lock:
            if self.exhausted:
                return False
            self.seen += 1
            if self.seen <= self.after:
                return False
            self.applied += 1
            return True

    def to_dict(self) -> dict[str, Any]:
        """Return the public fields (for the admin API)."""
        data = {item.name: getattr(self, item.name) for item in fields(self) if not item.name.startswith("_")}
        data["exhausted"] = self.exhausted
        return data


_RULE_KEYS = ("method", "action", "status", "delay", "count", "after", "process")


def rule_from_dict(data: dict[str, Any]) -> Rule:
    """Build a rule from its JSON form, rejecting unknown keys."""
    unknown = set(data) - set(_RULE_KEYS) - {"id", "seen", "applied", "exhausted"}
    if unknown:
        raise ValueError(f"unknown injection rule keys: {', '.join(sorted(unknown))}")
    return Rule(**{key: data[key] for key in _RULE_KEYS if key in data})


def _scalar(text: str) -> Any:
    """Interpret a ``key=value`` value from the compact rule syntax."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_rule_spec(spec: str) -> dict[str, Any]:
    """Parse a rule given on the command line: JSON, or ``METHOD:ACTION[:key=value,...]``.

    Examples: ``updateJob:status:status=503,count=2``, ``getJob:delay:delay=2.5``, ``*:drop:after=3``.
    """
    spec = spec.strip()
    if spec.startswith("{"):
        decoded = json.loads(spec)
        if not isinstance(decoded, dict):
            raise ValueError("a JSON rule must be an object")
        return decoded
    parts = spec.split(":", 2)
    if len(parts) < 2:
        raise ValueError(f"bad rule {spec!r}: expected METHOD:ACTION[:key=value,...] or JSON")
    data: dict[str, Any] = {"method": parts[0], "action": parts[1]}
    if len(parts) == 3 and parts[2]:
        for item in parts[2].split(","):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"bad rule option {item!r} in {spec!r}")
            data[key.strip()] = _scalar(value.strip())
    rule_from_dict(data)  # validate now, so the CLI fails before contacting a server
    return data


class Injector:
    """The active rule list of a server; thread-safe."""

    def __init__(self) -> None:
        """Start without rules."""
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def add(self, data: dict[str, Any]) -> Rule:
        """Validate and append a rule; returns it with its id."""
        rule = rule_from_dict(data)
        with self._lock:
            rule.id = next(self._ids)
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        """Return every rule with its counters."""
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def pick(self, name: str) -> Optional[Rule]:
        """Return the first rule that fires for a request to ``name`` (rules are tried in order)."""
        with self._lock:
            rules = list(self._rules)
        for rule in rules:
            if rule.consider(name):
                return rule
        return None
