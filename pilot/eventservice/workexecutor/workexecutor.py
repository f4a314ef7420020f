"""WorkExecutor: choose the event-service executor plug-in (``--es-executor-type``) and drive it.

``WorkExecutor(args={'executor_type': 'generic'}, **plugin_options)``; ``set_payload(payload)``;
``start()`` returns once the payload runs (or the plug-in ended without starting it); ``stop()`` asks
for a graceful end, ``kill(reason)`` stops the payload now; ``wait()`` blocks until everything,
including the last stage-out and range updates, is done and returns the exit code.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Optional

from pilot.common.exception import NotImplementedFailure, SetupFailure

logger = logging.getLogger(__name__)

#: executor type -> plug-in class (module path, class name)
PLUGINS = {
    "generic": ("pilot.eventservice.workexecutor.plugins.genericexecutor", "GenericExecutor"),
}
#: types Pilot 2/3 knew that this pilot does not provide (a job asking for one fails clearly)
KNOWN_ELSEWHERE = ("base", "nl", "boinc", "hammercloud", "mpi", "raythena", "hpo")


def plugin_class(executor_type: str) -> type:
    """The executor class of ``executor_type`` (raises NotImplementedFailure 1300 for an unknown one)."""
    name = (executor_type or "generic").strip().lower()
    if name not in PLUGINS:
        extra = " (a Pilot 2/3 executor type not provided here)" if name in KNOWN_ELSEWHERE else ""
        raise NotImplementedFailure(f"event service executor type {name!r} is not available{extra}; "
                                    f"known: {', '.join(sorted(PLUGINS))}")
    module, cls = PLUGINS[name]
    return getattr(importlib.import_module(module), cls)


class WorkExecutor:
    """The front of an event-service executor plug-in."""

    def __init__(self, args: Optional[dict] = None, **options: Any) -> None:
        self.args = dict(args or {})
        self.options = options
        self.payload: Optional[dict] = None
        self.plugin: Any = None
        self.is_retrieve_payload = False

    # ------------------------------------------------------------------ payload
    def set_payload(self, payload: dict) -> None:
        self.payload = payload

    def set_retrieve_payload(self) -> None:
        self.is_retrieve_payload = True

    def set_retrieve_paylaod(self) -> None:  # the Pilot 2 spelling
        self.set_retrieve_payload()

    def get_payload(self) -> Optional[dict]:
        return self.payload

    def get_plugin_confs(self) -> dict:
        """``{'class': <module.Class>, 'args': ...}`` of the chosen plug-in (Pilot 2 shape)."""
        module, cls = PLUGINS.get(self.executor_type, ("", self.executor_type))
        return {"class": f"{module}.{cls}", "args": self.args}

    @property
    def executor_type(self) -> str:
        return str(self.args.get("executor_type") or "generic").strip().lower()

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout: Optional[float] = None) -> bool:
        """Create and start the plug-in; return True once the payload runs (False if it never started)."""
        cls = plugin_class(self.executor_type)
        self.plugin = cls(args=self.args, **self.options)
        if self.is_retrieve_payload:
            self.plugin.set_retrieve_payload()
        elif not self.payload:
            raise SetupFailure("the work executor has no payload")
        else:
            self.plugin.set_payload(self.payload)
        logger.info("starting the %s event service executor", self.executor_type)
        self.plugin.start()
        started = self.plugin.wait_payload_started(timeout)
        if started:
            logger.info("ES payload started (pid %s)", self.get_pid())
        return started

    def _require(self) -> Any:
        if self.plugin is None:
            raise SetupFailure("no event service executor plug-in was started")
        return self.plugin

    def get_pid(self) -> Optional[int]:
        return self.plugin.get_pid() if self.plugin is not None else None

    def stop(self) -> Any:
        """Graceful: no more ranges; the payload finishes its current one and exits."""
        return self._require().stop()

    def kill(self, reason: str = "") -> None:
        """Stop the payload now (finished ranges are still staged out and reported)."""
        plugin = self._require()
        if hasattr(plugin, "kill"):
            plugin.kill(reason)
        else:
            plugin.stop()

    def is_alive(self) -> bool:
        return bool(self._require().is_alive())

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        """Block until the plug-in is done; its exit code (None on time-out)."""
        plugin = self._require()
        if not plugin.done.wait(timeout):
            return None
        plugin.join(timeout)
        return plugin.get_exit_code()

    def get_exit_code(self) -> Optional[int]:
        return self._require().get_exit_code()

    def get_event_ranges(self, num_event_ranges: int = 1) -> list:
        return self._require().get_event_ranges(num_event_ranges)

    def update_events(self, messages: Any) -> Any:
        return self._require().update_events(messages)
