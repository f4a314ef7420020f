"""``-w stagein``: Pilot 2's name of the stage-in workflow, the same as ``-w stager`` (Pilot 3)."""

from pilot.workflow.stager import run

__all__ = ["run"]
