"""The payload kind a workflow name selects (``-w production`` / ``-w analysis``)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

logger = logging.getLogger(__name__)


def with_job_type(args: Any, job_type: str) -> Any:
    """A copy of ``args`` whose ``jobtype`` (sent as getJob's jobType) is ``job_type`` unless one was given."""
    copy = argparse.Namespace(**vars(args))
    if not getattr(copy, "jobtype", ""):
        copy.jobtype = job_type
    logger.info("workflow %s: asking for jobType=%s", getattr(args, "workflow", ""), copy.jobtype)
    return copy
