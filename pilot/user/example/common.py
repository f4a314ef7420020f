"""Example plug-in: the generic job handling, with a payload command of its own."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from pilot.user.generic import common as generic
from pilot.user.generic.common import (  # noqa: F401  (the rest of the contract is the generic one)
    allow_timefloor, get_metadata, get_utility_command_kill_signal, get_utility_command_output_filename,
    get_utility_command_setup, get_utility_commands, parse_jobreport_data, post_prestagein_utility_command,
    post_utility_command_action, preprocess_debug_command, process_debug_command, remove_redundant_files,
    sanity_check, update_output_for_hpo, update_server, update_stagein, validate, verify_job,
)

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData


def get_payload_command(job: JobData) -> str:
    """The generic command, preceded by the experiment's own environment and a banner line."""
    banner = shlex.quote(f"example experiment: job {job.jobid}")
    return f"export EXAMPLE_EXPERIMENT=example;echo {banner};{generic.get_payload_command(job)}"
