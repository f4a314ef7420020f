"""The hooks an ES process calls: what to run, where ranges come from, where results go."""

from __future__ import annotations

from typing import Any, Optional

from pilot.common.exception import NotImplementedFailure


class ESHook:
    """Base class of the three hooks; a subclass implements them (see ESManager)."""

    def get_payload(self) -> dict:
        """The payload to run: ``{'executable': <shell line>, 'workdir': ..., 'output_file': ...,
        'error_file': ..., 'job': <JobData>}`` (only ``executable`` is required)."""
        raise NotImplementedFailure("ESHook.get_payload is not implemented")

    def get_event_ranges(self, num_ranges: int = 1) -> Optional[list]:
        """Up to ``num_ranges`` event ranges; an empty list (or None) when there are no more."""
        raise NotImplementedFailure("ESHook.get_event_ranges is not implemented")

    def handle_out_message(self, message: dict) -> Any:
        """Act on a parsed payload message: ``{'id', 'status': 'finished', 'output', 'cpu', 'wall', 'message'}``
        for a finished range, ``{'id', 'status': 'failed'|'fatal', 'message'}`` for a failed one."""
        raise NotImplementedFailure("ESHook.handle_out_message is not implemented")
