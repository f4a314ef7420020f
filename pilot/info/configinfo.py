"""Queue settings forced by the pilot configuration (``[Information] acopytools`` ...)."""

from __future__ import annotations

import logging
from typing import Any

from pilot.info.basedata import CoercionError, to_dict
from pilot.info.extinfo import config_value

logger = logging.getLogger(__name__)


class PilotConfigProvider:
    """Overrides of queue data taken from the pilot's config file."""

    #: config keys of the [Information] section that override queue fields of the same name
    keys = ("acopytools",)

    def resolve_queuedata(self, pandaqueue: str, **kwargs: Any) -> dict:
        """``{pandaqueue: overrides}`` from the config file."""
        data = {}
        for key in self.keys:
            value = config_value("Information", key)
            if not value:
                continue
            try:
                data[key] = to_dict(value)
            except CoercionError as exc:
                logger.warning("ignoring [Information] %s: %s", key, exc)
        if data:
            logger.info("queuedata: config overrides %s", data)
        return {pandaqueue: data}

    def resolve_storage_data(self, ddmendpoints: Any = None, **kwargs: Any) -> dict:
        """No storage overrides in the config."""
        return {}

    def __repr__(self) -> str:
        return "PilotConfigProvider()"
