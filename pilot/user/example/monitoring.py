"""Example plug-in: the generic ``monitoring`` module, unchanged."""

from pilot.user.generic.monitoring import (  # noqa: F401
    fast_monitor_tasks,
)
