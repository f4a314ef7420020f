"""Example plug-in: the generic ``utilities`` module, unchanged."""

from pilot.user.generic.utilities import (  # noqa: F401
    get_memory_monitor_info, precleanup,
)
