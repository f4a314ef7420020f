"""ESManager: run one ES process with the hooks of an :class:`ESHook`."""

from __future__ import annotations

import logging
from typing import Optional

from pilot.common.exception import SetupFailure

from .eshook import ESHook
from .esprocess import ESProcess

logger = logging.getLogger(__name__)


class ESManager:
    """Set up an ESProcess from a hook, run it to the end and return its exit code."""

    def __init__(self, hook: ESHook, waiting_time: Optional[float] = None) -> None:
        if not isinstance(hook, ESHook):
            raise SetupFailure(f"hook {hook!r} is not an instance of {ESHook.__name__}")
        self.hook = hook
        self.waiting_time = waiting_time
        self.process: Optional[ESProcess] = None

    def run(self) -> Optional[int]:
        """Start the payload under an ESProcess and wait until it is done; return its exit code."""
        payload = self.hook.get_payload()
        logger.info("starting an ES process for %s", payload.get("executable", "")[:200])
        kwargs = {} if self.waiting_time is None else {"waiting_time": self.waiting_time}
        process = ESProcess(payload, **kwargs)
        process.set_get_event_ranges_hook(self.hook.get_event_ranges)
        process.set_handle_out_message_hook(self.hook.handle_out_message)
        self.process = process
        process.start()
        process.join()
        logger.info("the ES process finished with %s", process.poll())
        return process.poll()
