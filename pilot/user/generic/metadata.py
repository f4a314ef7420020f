"""Generic experiment plug-in: the input file catalogue (``PoolFileCatalog.xml``) of a job."""

from __future__ import annotations

import logging
import os
from typing import Dict

from pilot.util.filehandling import write_file_atomic

logger = logging.getLogger(__name__)

CATALOG_NAME = "PoolFileCatalog.xml"
_HEADER = ('<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n<!-- Edited By POOL -->\n'
           '<!DOCTYPE POOLFILECATALOG SYSTEM "InMemory">\n')


def catalog_xml(file_dictionary: Dict[str, str]) -> str:
    """The POOL catalogue text for ``{guid: physical file name}``."""
    import xml.etree.ElementTree as ET  # here: the pre-getJob plug-in check loads this module for every pilot

    root = ET.Element("POOLFILECATALOG")
    for guid, pfn in file_dictionary.items():
        entry = ET.SubElement(root, "File", ID=str(guid))
        physical = ET.SubElement(entry, "physical")
        ET.SubElement(physical, "pfn", filetype="ROOT_All", name=str(pfn))
        ET.SubElement(entry, "logical")
    ET.indent(root)
    return _HEADER + ET.tostring(root, encoding="unicode") + "\n"


def create_input_file_metadata(file_dictionary: Dict[str, str], workdir: str,
                               filename: str = CATALOG_NAME) -> str:
    """Write ``<workdir>/PoolFileCatalog.xml`` for ``{guid: pfn}`` and return its text."""
    text = catalog_xml(file_dictionary)
    write_file_atomic(os.path.join(workdir, filename), text)
    logger.info("wrote %s with %d input file(s)", filename, len(file_dictionary))
    return text
