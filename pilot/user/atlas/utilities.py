"""ATLAS plug-in: housekeeping and the memory monitor (prmon) summary."""

from __future__ import annotations

from pilot.user.generic.utilities import (  # noqa: F401  (part of this plug-in's interface)
    MEMORY_MONITOR_SUMMARY, get_memory_monitor_info, precleanup,
)
