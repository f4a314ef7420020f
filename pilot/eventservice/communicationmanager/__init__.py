"""Serialised server calls of the event service (get and update event ranges, get and update jobs)."""

from .communicationmanager import CommunicationManager, CommunicationRequest, CommunicationResponse

__all__ = ["CommunicationManager", "CommunicationRequest", "CommunicationResponse"]
