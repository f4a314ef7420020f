"""Information about the queue, its storages, jobs and files.

``infosys`` is the pilot-wide :class:`InfoService`; call ``infosys.init(queue, ...)`` once at start.
"""

from pilot.info.filespec import FileSpec
from pilot.info.infoservice import InfoService
from pilot.info.jobdata import JobData
from pilot.info.jobinfo import JobInfoProvider
from pilot.info.queuedata import QueueData
from pilot.info.storagedata import StorageData

__all__ = ["infosys", "InfoService", "JobData", "FileSpec", "JobInfoProvider", "QueueData", "StorageData"]

#: the pilot-wide information service (initialised by pilot.py, by Harvester, or by tests)
infosys = InfoService()
