"""A minimal experiment plug-in (``--pilot-user example``): the worked example of doc/source/plugins.rst.

It reuses the generic plug-in for everything and changes only the payload command.
"""
