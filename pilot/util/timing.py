"""Pilot 2's ``pilot.util.timing`` names that outside code imports.

``time_stamp()`` is the local time in ISO-8601 with the UTC offset (``2026-12-07T20:15:02+01:00``),
the format of updateJob's ``timestamp`` and of Harvester's ``worker_attributes.json``: the one definition.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Optional


def time_stamp(epoch: Optional[float] = None) -> str:
    """Local ISO-8601 date and time with the UTC offset, to the second (now, or ``epoch``)."""
    moment = epoch if epoch is not None else time.time()
    return datetime.fromtimestamp(moment).astimezone().isoformat(timespec="seconds")
