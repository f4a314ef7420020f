"""The dev server's application core: routing, failure injection and request recording.

``App.handle(request)`` turns a decoded ``Request`` into an ``Outcome`` (status, bytes, or "drop the
connection") without touching sockets, so the unit tests exercise the whole protocol in-process.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from . import admin, files, info, panda, rest
from .info import InfoData
from .injection import Injector, Rule
from .protocol import BadRequest
from .routing import Reply, Request, Route, Router, error
from .store import Store

logger = logging.getLogger(__name__)

MALFORMED_BODY = b"<html><body><h1>502 Bad Gateway</h1>devserver: injected malformed reply</body></html>"


@dataclass(frozen=True)
class Outcome:
    """What the HTTP layer must send back: bytes with a status, or nothing at all (``drop``)."""

    status: int
    body: bytes
    content_type: str
    drop: bool = False
    injected: Optional[str] = None


def all_routes() -> list[Route]:
    """The complete route table, in matching order."""
    return [*panda.ROUTES, *rest.ROUTES, *info.ROUTES, *admin.ROUTES, *files.ROUTES]


class App:
    """State shared by every request of one server: store, info data, rules, settings."""

    def __init__(self, store: Store, info_data: InfoData, settings: Optional[dict[str, Any]] = None,
                 routes: Optional[list[Route]] = None) -> None:
        """Wire the parts together; ``settings`` holds ``proxy`` and ``keypairs``."""
        self.store = store
        self.info = info_data
        self.injector = Injector()
        self.settings: dict[str, Any] = {"proxy": None, "keypairs": {}, **(settings or {})}
        self._initial_settings = copy.deepcopy(self.settings)
        self.router = Router(routes or all_routes())
        self.endpoints: dict[str, Any] = {}
        self.stopping = threading.Event()
        self._changed = threading.Condition()

    # ---------------------------------------------------------- waiting

    def notify(self) -> None:
        """Wake up every ``wait_for`` caller (called after each state change)."""
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` holds, the timeout passes or the server stops."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if predicate():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.stopping.is_set():
                    return False
                self._changed.wait(remaining)

    # ---------------------------------------------------------- control

    def reset(self, scope: str = "all") -> None:
        """Clear rules (``rules``), stored data (``data``) or both plus info/settings (``all``)."""
        if scope in ("all", "rules"):
            self.injector.clear()
        if scope in ("all", "data"):
            self.store.reset()
        if scope == "all":
            self.info.reset()
            self.settings.clear()
            self.settings.update(copy.deepcopy(self._initial_settings))
        self.notify()

    def describe(self) -> dict[str, Any]:
        """Identity of the server (URLs and paths) plus the published queue and storage names."""
        return {**self.endpoints, "queues": sorted(self.info.queues()), "storages": sorted(self.info.storages())}

    # ---------------------------------------------------------- handling

    def handle(self, request: Request) -> Outcome:
        """Route a request, apply any injection rule, record protocol calls, and build the outcome."""
        route, groups, path_known = self.router.match(request.verb, request.path)
        if route is None:
            return self._encode(error(405 if path_known else 404, f"no route for {request.verb} {request.path}"))
        request.groups = groups
        name = route.endpoint_name(groups)
        rule = self.injector.pick(name) if name else None
        if rule is not None:
            logger.info("injecting %s into %s (rule %d)", rule.action, name, rule.id)
            if rule.action == "delay":
                self.stopping.wait(rule.delay)
        reply: Optional[Reply] = None
        if rule is None or rule.action == "delay" or rule.process:
            reply = self._run(route, request)
        outcome = self._apply(rule, reply)
        if route.record and name:
            self._record(name, request, outcome)
        return outcome

    def _run(self, route: Route, request: Request) -> Reply:
        """Call the handler, turning decoding problems into 400 and bugs into 500."""
        try:
            return route.handler(self, request)
        except BadRequest as exc:
            return error(400, str(exc))
        except Exception as exc:  # a handler bug must not kill the server thread
            logger.exception("handler for %s %s failed", request.verb, request.path)
            return error(500, f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _encode(reply: Reply, injected: Optional[str] = None) -> Outcome:
        """Serialise a reply."""
        body, ctype = reply.encode()
        return Outcome(reply.status, body, ctype, injected=injected)

    def _apply(self, rule: Optional[Rule], reply: Optional[Reply]) -> Outcome:
        """Turn the handler's reply into the outcome the rule asks for."""
        if rule is None or rule.action == "delay":
            return self._encode(reply or error(500, "no reply"), injected=rule.action if rule else None)
        if rule.action == "status":
            return self._encode(error(rule.status, f"devserver: injected HTTP {rule.status}"), injected="status")
        if rule.action == "drop":
            return Outcome(0, b"", "", drop=True, injected="drop")
        if rule.action == "malformed":
            return Outcome(200, MALFORMED_BODY, "text/html", injected="malformed")
        body, ctype = (reply or Reply(200, {"StatusCode": 0})).encode()
        return Outcome(200, body[:max(1, len(body) // 2)], ctype, injected="partial")

    def _record(self, name: str, request: Request, outcome: Outcome) -> None:
        """Store the protocol request with what happened to it and the sizes of both bodies (as sent)."""
        try:
            fields = request.params
        except BadRequest as exc:
            fields = {"_undecodable": str(exc)}
        try:
            self.store.record_request(name, fields, client=request.client, scheme=request.scheme,
                                      http_status=outcome.status, injected=outcome.injected, result=request.note,
                                      bytes_in=len(request.body) + len(request.query), bytes_out=len(outcome.body))
        except Exception:  # recording must never turn a served request into a failure
            logger.exception("could not record %s request", name)
