"""Communicator backends: the PanDA server (legacy and REST), Harvester's shared files, and aCT's file.

The common interface and the choice between them are in :mod:`pilot.api.communicator`.
"""
