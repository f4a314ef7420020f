"""Generic experiment plug-in: payload memory checks (none by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Tuple

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData


def allow_memory_usage_verifications() -> bool:
    """The generic experiment does not check memory usage."""
    return False


def memory_usage(job: JobData) -> Tuple[int, str]:
    """(error code, diagnostics) of a memory check: always fine for the generic experiment."""
    return 0, ""
