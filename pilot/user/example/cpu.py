"""Example plug-in: the generic ``cpu`` module, unchanged."""

from pilot.user.generic.cpu import (  # noqa: F401
    set_core_counts,
)
