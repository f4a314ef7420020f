"""HPC resource plug-ins (``--hpc-resource NAME``): how a rank finds its job and prepares its directories.

A plug-in is a module ``pilot.resource.<name>``. It may define any of the functions below; those it
leaves out are taken from :mod:`pilot.resource.generic` (the plain-Linux implementation):

=====================================================  ==================================================
function                                               role
=====================================================  ==================================================
``get_job(communication_point, rank=0)``               (JobData or None, rank): this rank's job
``set_job_workdir(job, communication_point)``          the job's directory on the shared file system
``get_setup(job=None)``                                shell lines run before the payload (list)
``set_scratch_workdir(job, work_dir, args)``           where the payload runs (a node-local scratch copy,
                                                       or ``work_dir``)
``command_fix(command, job_scratch_dir)``              the payload command adapted to the resource
``process_jobreport(report_name, scratch, work_dir)``  the job report, trimmed, where Harvester reads it
``postprocess_workdir(workdir)``                       clean-up after the payload
=====================================================  ==================================================

These are the names and arguments of the Pilot 2/3 resource plug-ins (``titan``, ``summit``...), so
an existing site plug-in keeps working.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException

FUNCTIONS = ("get_job", "set_job_workdir", "get_setup", "set_scratch_workdir", "command_fix", "process_jobreport",
             "postprocess_workdir")


def load_resource(name: str) -> Any:
    """The plug-in ``pilot.resource.<name>`` with the generic functions filled in for the missing ones."""
    name = (name or "generic").strip().lower()
    if not name.isidentifier():
        raise PilotException(f"invalid HPC resource name {name!r}", code=ErrorCodes.SETUPFAILURE)
    from . import generic

    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ImportError as exc:
        raise PilotException(f"unknown HPC resource {name!r}: {exc}", code=ErrorCodes.SETUPFAILURE) from None
    return SimpleNamespace(name=name, module=module,
                           **{fn: getattr(module, fn, None) or getattr(generic, fn) for fn in FUNCTIONS})
