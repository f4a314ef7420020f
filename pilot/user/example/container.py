"""Example plug-in: the generic ``container`` module, unchanged."""

from pilot.user.generic.container import (  # noqa: F401
    create_middleware_container_command, do_use_container, get_middleware_container_script, wrapper,
)
