"""Example plug-in: the generic ``jobdata`` module, unchanged."""

from pilot.user.generic.jobdata import (  # noqa: F401
    jobparams_postfiltering, jobparams_prefiltering,
)
