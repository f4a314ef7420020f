"""``-w production``: the generic workflow asking for production payloads.

Pilot 2 and Pilot 3 listed the choice but their module only logged "not implemented". Here it
selects the payload kind: unless ``--job-type`` is given, getJob asks for ``jobType=managed``.
"""

from __future__ import annotations

from typing import Any, Optional

from pilot.workflow import generic
from pilot.workflow.kinds import with_job_type


def run(args: Any, mainworkdir: Optional[str] = None, infosys: Any = None, communicator: Any = None,
        summary: Any = None) -> int:
    return generic.run(with_job_type(args, "managed"), mainworkdir=mainworkdir, infosys=infosys,
                       communicator=communicator, summary=summary)
