"""Work executors: run an event-service payload and move its range outputs to storage."""

from .workexecutor import WorkExecutor

__all__ = ["WorkExecutor"]
