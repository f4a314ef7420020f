"""``-w eventservice_hpc``: Pilot 2's Yoda/Droid name, run by the HPC workflow (:mod:`pilot.workflow.generic_hpc`).

Pilot 2's module imported ``pilot.eventservice.yoda``/``droid``, which never existed (the choice
ended in an exception). Here rank 0 plays Yoda's part (the services beside its payload and the
benchmark) and every rank runs its job from Harvester's files, as in ``generic_hpc``.
"""

from pilot.workflow.generic_hpc import run

__all__ = ["run"]
