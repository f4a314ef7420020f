"""Work executor plug-ins, chosen by ``--es-executor-type``: ``generic`` (default) and ``base``."""
