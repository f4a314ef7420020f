"""Request, reply and route types of the dev server, and the router that matches them.

A route is one table entry: HTTP verbs, a path regex, a handler ``(app, request) -> Reply`` and an
endpoint name used by failure injection and request recording (None for admin routes, which are
never injected). Adding an endpoint family (e.g. the REST-style ``/api/v1/...``) is adding entries.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

from .protocol import decode_params

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .app import App


@dataclass
class Request:
    """One decoded HTTP request."""

    verb: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    client: str = ""
    scheme: str = "http"
    groups: dict[str, str] = field(default_factory=dict)
    note: str = ""
    _params: Optional[dict[str, Any]] = None

    @property
    def params(self) -> dict[str, Any]:
        """Query string and body fields merged (decoded once, on first use)."""
        if self._params is None:
            self._params = decode_params(self.query, self.body, self.headers)
        return self._params

    def json(self) -> Any:
        """Decode the body as JSON (gzip tolerated); empty body gives None."""
        params = decode_params("", self.body, {**dict(self.headers), "Content-Type": "application/json"})
        return params.get("_body", params) if self.body else None


@dataclass
class Reply:
    """What a handler returns: a status and a body (dict/list become JSON, str becomes text)."""

    status: int = 200
    body: Any = None
    content_type: Optional[str] = None

    def encode(self) -> tuple[bytes, str]:
        """Return the body bytes and content type."""
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), self.content_type or "text/plain; charset=utf-8"
        data = json.dumps(self.body if self.body is not None else {}, default=str)
        return data.encode("utf-8"), self.content_type or "application/json"


def error(status: int, message: str) -> Reply:
    """A JSON error reply."""
    return Reply(status, {"error": message})


Handler = Callable[["App", Request], Reply]


@dataclass(frozen=True)
class Route:
    """One routing-table entry."""

    verbs: tuple[str, ...]
    pattern: str
    handler: Handler
    name: Optional[str] = None
    record: bool = False

    def endpoint_name(self, groups: Mapping[str, str]) -> Optional[str]:
        """Resolve the injection/recording name (may use named groups, e.g. ``{method}``)."""
        return self.name.format(**groups) if self.name else None


class Router:
    """Match (verb, path) against an ordered route table."""

    def __init__(self, routes: Sequence[Route]) -> None:
        """Compile every route pattern (anchored at both ends)."""
        self._routes = [(route, re.compile(route.pattern + r"\Z")) for route in routes]

    def match(self, verb: str, path: str) -> tuple[Optional[Route], dict[str, str], bool]:
        """Return (route, groups, path_known); ``path_known`` tells 405 from 404 when no route matches."""
        path_known = False
        for route, regex in self._routes:
            found = regex.match(path)
            if found:
                path_known = True
                if verb in route.verbs:
                    return route, {k: v for k, v in found.groupdict().items() if v is not None}, True
        return None, {}, path_known
