"""The event-service process: the payload, its message channel and the hooks that feed it."""

from .eshook import ESHook
from .esmanager import ESManager
from .esmessage import MessageThread
from .esprocess import ESProcess

__all__ = ["ESHook", "ESManager", "MessageThread", "ESProcess"]
