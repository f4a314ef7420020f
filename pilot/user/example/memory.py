"""Example plug-in: the generic ``memory`` module, unchanged."""

from pilot.user.generic.memory import (  # noqa: F401
    allow_memory_usage_verifications, memory_usage,
)
