"""``-w payload_stageout``: the payload and stage-out half of the Harvester split workflow.

The inputs are taken from the hand-over directory the stager filled (see :mod:`pilot.workflow.split`).
"""

from __future__ import annotations

from typing import Any, Optional

from pilot.workflow import generic, split


def run(args: Any, mainworkdir: Optional[str] = None, infosys: Any = None, communicator: Any = None,
        summary: Any = None) -> int:
    """Get the job, take its handed-over inputs, run it and stage out; the pilot-level code."""
    return generic.run(args, mainworkdir=mainworkdir, infosys=infosys, communicator=communicator, summary=summary,
                       stages={"stage_in": split.adopt_inputs})
