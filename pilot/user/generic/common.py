"""Generic experiment plug-in: job checks, the payload command and the pre/co/post-process utilities.

The payload command is ``<transformation> <jobPars>``, run by ``bash -c`` in the job's work dir.
A transformation URL (user analysis job) is found, copied or downloaded by :mod:`.setup` and run
as ``./<name>``.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
from typing import TYPE_CHECKING, Any, Optional

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.util.config import config

from .jobdata import filter_job_parameters, split_platform
from .setup import get_analysis_trf, local_transformation

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

# utility orders (compat 9): when a utility command runs relative to the payload and stage-in
UTILITY_BEFORE_PAYLOAD = 1
UTILITY_WITH_PAYLOAD = 2
UTILITY_AFTER_PAYLOAD_STARTED = 3
UTILITY_AFTER_PAYLOAD_STARTED2 = 4
UTILITY_AFTER_PAYLOAD_FINISHED = 5
UTILITY_AFTER_PAYLOAD_FINISHED2 = 6
UTILITY_BEFORE_STAGEIN = 7
UTILITY_WITH_STAGEIN = 8

#: exit codes of a pre/post-process that end an HPO loop without error
HPO_LOOP_END_CODES = (160, 161, 162)


def sanity_check() -> int:
    """Checks before the first job (none for the generic experiment): 0 when all is well."""
    return 0


def validate(job: JobData) -> bool:
    """Experiment checks of a job definition; act on the pilot's tokens in jobPars.

    Raises PilotException when the job cannot run.
    """
    if "\x00" in (job.transformation or "") + (job.jobparams or ""):
        raise PilotException("job definition contains NUL bytes", code=ErrorCodes.NOTDEFINED)
    split_platform(job)
    filter_job_parameters(job)
    return True


def verify_job(job: JobData) -> bool:
    """Further checks once the job is in the pilot (none for the generic experiment)."""
    return True


def get_payload_command(job: JobData) -> str:
    """``<transformation> <jobPars>``: the only shell line the pilot runs for the job."""
    if not job.transformation:
        raise PilotException("no transformation in the job definition", code=ErrorCodes.NOTDEFINED)
    if any(spec.status == "remote_io" for spec in job.indata):  # direct access: the TURLs are in the catalogue
        from .metadata import create_input_file_metadata

        create_input_file_metadata({spec.guid: spec.turl if spec.status == "remote_io" else spec.lfn
                                    for spec in job.indata if spec.guid}, job.workdir)
    if job.is_analysis:
        name = get_analysis_trf(job.transformation, job.workdir)
        return f"./{shlex.quote(name)} {job.jobparams}".strip()
    local = local_transformation(job.transformation, job.workdir)
    return f"{local or shlex.quote(job.transformation)} {job.jobparams}".strip()


def remove_redundant_files(workdir: str, outputfiles: Optional[list] = None, islooping: bool = False,
                           debugmode: bool = False) -> None:
    """Nothing is redundant for the generic experiment."""


def process_utility(process: Any, label: str, ignore_failure: bool = False) -> dict:
    """A job's ``preprocess``/``coprocess``/``postprocess`` field as a utility command dict ({} if unset)."""
    if not isinstance(process, dict) or not process.get("command"):
        return {}
    return {"command": str(process["command"]), "args": str(process.get("args", "") or ""), "label": label,
            "ignore_failure": ignore_failure}


def get_utility_commands(order: Optional[int] = None, job: Optional[JobData] = None) -> dict:
    """The utility to run at ``order``: {command, args, label, ignore_failure}, or {} for none.

    Generic: the job's preprocess (before the payload), coprocess (second after-start utility) and
    postprocess (second after-finished utility).
    """
    if job is None:
        return {}
    if order == UTILITY_BEFORE_PAYLOAD:
        return process_utility(job.preprocess, "preprocess")
    if order == UTILITY_AFTER_PAYLOAD_STARTED2:
        return process_utility(job.coprocess, "coprocess", ignore_failure=True)
    if order == UTILITY_AFTER_PAYLOAD_FINISHED2:
        return process_utility(job.postprocess, "postprocess")
    return {}


def get_utility_command_setup(name: str, job: Optional[JobData] = None, setup: Optional[str] = None,
                              **kwargs: Any) -> str:
    """The shell line of a pre/co/post-process utility: ``<command> <args>`` ('' for other names)."""
    if job is None:
        return ""
    process = {"preprocess": job.preprocess, "coprocess": job.coprocess, "postprocess": job.postprocess}.get(name)
    utility = process_utility(process, name)
    if not utility:
        return ""
    return f"{utility['command']} {utility['args']}".strip()


def get_utility_command_kill_signal(name: str) -> int:
    """The signal that stops a utility (SIGTERM)."""
    return signal.SIGTERM


def get_utility_command_output_filename(name: str, selector: Any = None) -> str:
    """The output file of a utility ('' for none)."""
    return ""


def post_utility_command_action(name: str, job: JobData) -> None:
    """Nothing to do after a utility."""


def post_prestagein_utility_command(**kwargs: Any) -> None:
    """Nothing to do after a pre-stage-in utility."""


def update_stagein(job: JobData) -> None:
    """Nothing to change before stage-in."""


def get_metadata(workdir: str) -> Optional[str]:
    """The payload's job report text, if any."""
    path = os.path.join(workdir, str(config.Payload.jobreport))
    if os.path.exists(path):
        with open(path, errors="replace") as handle:
            return handle.read()
    return None


def update_server(job: JobData) -> None:
    """Nothing extra to send."""


def allow_timefloor(submitmode: str) -> bool:
    """Multi-job pilots are allowed."""
    return True


def process_debug_command(debug_command: str, pandaid: str) -> str:
    """The debug command as received (no experiment-specific rewriting)."""
    return debug_command


def preprocess_debug_command(job: JobData) -> None:
    """Nothing to prepare."""


def update_output_for_hpo(job: JobData) -> None:
    """No HPO support in the generic experiment."""


def parse_jobreport_data(job_report: Any) -> dict:
    """Nothing extracted by the generic experiment."""
    return {}
