"""Example plug-in: the generic ``loopingjob_definitions`` module, unchanged."""

from pilot.user.generic.loopingjob_definitions import (  # noqa: F401
    remove_unwanted_files,
)
