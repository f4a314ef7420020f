"""The ``production_hpc`` workflow name of Pilot 2: the HPC workflow (:mod:`pilot.workflow.generic_hpc`)."""

from pilot.workflow.generic_hpc import run

__all__ = ["run"]
