"""The event service: event ranges from the server, through the payload's channel, outputs to storage.

* :mod:`.channel` -- the payload channel: yampl's "local" context, a ZeroMQ ROUTER on
  ``ipc:///tmp/zmq_<name>`` (:mod:`.zmqrouter` through pyzmq, else :mod:`.zmtp`, standard library);
* :mod:`.eventrange` -- the payload's messages and the updateEventRanges records;
* :mod:`.communicationmanager` -- server calls for ranges (through the pilot's communicator);
* :mod:`.esprocess` -- ESProcess (the payload and its channel), ESHook, ESManager, MessageThread;
* :mod:`.workexecutor` -- WorkExecutor and its plug-ins (``generic``): stage-out of range outputs;
* :mod:`.stageout` -- premerge tarballs and their upload through the Data API;
* :mod:`.testpayload` -- a small payload that speaks the channel, for tests and demos.

The payload control reaches all this through :mod:`pilot.control.payloads.eventservice`.
"""
