"""Generic experiment plug-in (``--pilot-user generic``): the base the other experiments reuse."""
