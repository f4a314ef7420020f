"""Example plug-in: the generic ``proxy`` module, unchanged."""

from pilot.user.generic.proxy import (  # noqa: F401
    verify_proxy,
)
