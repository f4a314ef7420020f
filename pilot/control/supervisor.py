"""The supervisor of the pilot's components: a :class:`pilot.util.runner.Runner` whose activities are critical.

Each component (job retrieval, validation, stage-in, payload, stage-out, the monitors) runs one
function in a thread of its name, started by the runner (the one place that starts threads). If it
raises, the exception is recorded, counted in the pilot's metrics and ``on_failure(name, error, code)``
is called at once (the pilot monitor aborts the job with 1319), so a dead component never leaves the
pilot hanging. Ended components stay listed in :attr:`Supervisor.workers`: the pilot monitor also
treats a critical component that *returned* while jobs are still in the pilot as a failure.
"""

from __future__ import annotations

from pilot.util.runner import Activity, Runner

#: one component and how it ended (``name``, ``thread``, ``error``, ``critical``, ``done``)
Worker = Activity


class Supervisor(Runner):
    """Start, watch and join the named components of a pilot run."""

    keep_done = True
    critical_default = True

    @property
    def workers(self) -> dict:
        """name -> :class:`Worker` (the runner's activities, the ended ones included)."""
        return self.activities


__all__ = ["Supervisor", "Worker"]
