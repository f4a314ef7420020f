"""Pilot exceptions: codes, messages, compat names."""

import pickle

import pytest

import pilot.common.exception as exc_module
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import (
    PilotException, RunPayloadFailure, StageInFailure, StageOutFailure, TimeoutException,
)

CODED_CLASSES = [
    ("NotImplemented", 1300), ("NotImplementedFailure", 1300), ("UnknownException", 1301),
    ("NoLocalSpace", 1098), ("SizeTooLarge", 1168), ("StageInFailure", 1099), ("StageOutFailure", 1137),
    ("SetupFailure", 1110), ("RunPayloadFailure", 1305), ("MessageFailure", 1240),
    ("CommunicationFailure", 1318), ("FileHandlingFailure", 1303), ("NoSuchFile", 1103),
    ("ConversionFailure", 1302), ("MKDirFailure", 1199), ("NoGridProxy", 1163), ("NoVomsProxy", 1177),
    ("TrfDownloadFailure", 1149), ("NotDefined", 1311), ("NotSameLength", 1312), ("ESRecoverable", 1224),
    ("ESFatal", 1228), ("ExecutedCloneJob", 1234), ("ESNoEvents", 1238), ("ExceededMaxWaitTime", 1317),
    ("BadXML", 1247), ("NoSoftwareDir", 1186), ("LogFileCreationFailure", 1320), ("QueuedataFailure", 1116),
    ("QueuedataNotOK", 1117), ("ReplicasNotFound", 1326), ("MiddlewareImportFailure", 1342),
    ("JobAlreadyRunning", 1336), ("UnknownCopytool", 1323), ("PluginError", 1300),
    ("ConfigurationError", 1319), ("TimeoutException", 1367),
]


@pytest.mark.parametrize("name,code", CODED_CLASSES)
def test_coded_subclasses(name, code):
    cls = getattr(exc_module, name)
    assert issubclass(cls, PilotException)
    error = cls("something broke")
    assert error.get_error_code() == code == error.code
    assert error.diag == "something broke"
    assert error._errorCode == code and error._error_code == code
    default = cls()
    expected = "Timeout reached" if cls is TimeoutException else ErrorCodes.get_error_message(code)
    assert default.diag == expected


def test_base_defaults_and_explicit_code():
    assert PilotException().code == ErrorCodes.UNKNOWNEXCEPTION
    error = PilotException("no replica", code=ErrorCodes.NOREPLICAS)
    assert error.code == 1326 and error.diag == "no replica"
    assert StageInFailure("x", code=1151).code == 1151


def test_code_first_order_is_understood():
    error = PilotException(1099, "diag text")
    assert (error.code, error.diag) == (1099, "diag text")
    only = PilotException(1137)
    assert only.code == 1137 and only.diag == ErrorCodes.get_error_message(1137)


def test_str_and_detail():
    error = RunPayloadFailure("payload died")
    assert str(error) == "Error code: 1305, message: payload died"
    assert error.get_last_error() == "payload died"
    assert error.get_detail().startswith("Error code: 1305")
    try:
        raise ValueError("inner")
    except ValueError:
        wrapped = PilotException("outer")
    assert "ValueError: inner" in wrapped.get_detail()


def test_kwargs_and_state_are_kept():
    error = StageOutFailure("copy failed", code=1152, state="CP_TIMEOUT")
    assert error.state == "CP_TIMEOUT" and error.kwargs == {"state": "CP_TIMEOUT"}


def test_can_be_caught_as_exception_and_pickled():
    with pytest.raises(PilotException) as info:
        raise StageInFailure("lost")
    assert info.value.code == 1099
    clone = pickle.loads(pickle.dumps(StageOutFailure("gone", code=1152, state="X")))
    assert type(clone) is StageOutFailure and clone.code == 1152 and clone.diag == "gone" and clone.state == "X"
    timeout = pickle.loads(pickle.dumps(TimeoutException("slow", timeout=5)))
    assert timeout.timeout == 5 and timeout.code == 1367


def test_timeout_exception_signature():
    error = TimeoutException("Timeout reached", timeout=10)
    assert error.timeout == 10 and error.message == "Timeout reached"
    assert "timeout=10 seconds" in str(error)
    assert TimeoutException().diag == "Timeout reached"


def test_star_import_does_not_shadow_builtin():
    namespace = {}
    exec("from pilot.common.exception import *", namespace)
    assert "NotImplemented" not in namespace
    assert "StageInFailure" in namespace
