"""Example plug-in: the generic ``metadata`` module, unchanged."""

from pilot.user.generic.metadata import (  # noqa: F401
    create_input_file_metadata,
)
