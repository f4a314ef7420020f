"""ATLAS plug-in: the input file catalogue (``PoolFileCatalog.xml``)."""

from __future__ import annotations

from pilot.user.generic.metadata import CATALOG_NAME, catalog_xml, create_input_file_metadata  # noqa: F401
