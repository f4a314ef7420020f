"""ATLAS experiment plug-in (``--pilot-user atlas``)."""
