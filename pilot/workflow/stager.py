"""``-w stager``: the stage-in half of the Harvester split workflow (see :mod:`pilot.workflow.split`)."""

from __future__ import annotations

from typing import Any, Optional

from pilot.workflow import generic, split


def run(args: Any, mainworkdir: Optional[str] = None, infosys: Any = None, communicator: Any = None,
        summary: Any = None) -> int:
    """Get the job, stage its inputs in, hand them over, report it running; the pilot-level code."""
    return generic.run(args, mainworkdir=mainworkdir, infosys=infosys, communicator=communicator, summary=summary,
                       stages={"execute_payloads": None, "hand_over": split.hand_over_inputs})
