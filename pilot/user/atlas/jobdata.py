"""ATLAS plug-in: job parameter filtering (the generic token handling, ``--athenaopts`` protected)."""

from __future__ import annotations

from pilot.user.generic.jobdata import (  # noqa: F401  (part of this plug-in's interface)
    filter_job_parameters, job_queuedata, jobparams_postfiltering, jobparams_prefiltering, set_accessmode,
    split_platform,
)
