"""Example plug-in: the generic ``diagnose`` module, unchanged."""

from pilot.user.generic.diagnose import (  # noqa: F401
    get_log_extracts, interpret,
)
