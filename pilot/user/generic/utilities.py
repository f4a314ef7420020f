"""Generic experiment plug-in: housekeeping and the memory monitor's summary."""

from __future__ import annotations

import json
import logging
import os
from typing import Dict

logger = logging.getLogger(__name__)

#: prmon's summary file and the updateJob field of each of its values
MEMORY_MONITOR_SUMMARY = "memory_monitor_summary.json"
_MAX_FIELDS = {"maxRSS": "rss", "maxVMEM": "vmem", "maxSWAP": "swap", "maxPSS": "pss"}
_AVG_FIELDS = {"avgRSS": "rss", "avgVMEM": "vmem", "avgSWAP": "swap", "avgPSS": "pss"}
_IO_FIELDS = {"totRCHAR": "rchar", "totWCHAR": "wchar", "totRBYTES": "read_bytes", "totWBYTES": "write_bytes"}


def precleanup() -> None:
    """Nothing to clean before the first job."""


def get_memory_monitor_info(workdir: str, name: str = "") -> Dict[str, int]:
    """The updateJob memory fields from a prmon summary in ``workdir`` ({} when there is none)."""
    path = os.path.join(workdir, name or MEMORY_MONITOR_SUMMARY)
    try:
        with open(path) as handle:
            summary = json.load(handle)
    except (OSError, ValueError) as exc:
        logger.debug("no memory monitor summary in %s: %s", workdir, exc)
        return {}
    maxima = summary.get("Max", {}) if isinstance(summary, dict) else {}
    averages = summary.get("Avg", {}) if isinstance(summary, dict) else {}
    out: Dict[str, int] = {}
    for target, source, table in ([(t, s, maxima) for t, s in _MAX_FIELDS.items()]
                                  + [(t, s, averages) for t, s in _AVG_FIELDS.items()]
                                  + [(t, s, maxima) for t, s in _IO_FIELDS.items()]):
        value = table.get(source)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[target] = int(value)
    wall = maxima.get("wtime") or 0
    if wall:
        for total, rate in (("totRCHAR", "rateRCHAR"), ("totWCHAR", "rateWCHAR"), ("totRBYTES", "rateRBYTES"),
                            ("totWBYTES", "rateWBYTES")):
            if total in out:
                out[rate] = int(out[total] / wall)
    return out
