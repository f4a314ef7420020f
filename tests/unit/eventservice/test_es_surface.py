"""The upstream event-service names (compat §1) import from their paths and do what they say."""

import importlib

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import NotImplementedFailure, SetupFailure


@pytest.mark.parametrize("module, names", [
    ("pilot.eventservice.communicationmanager.communicationmanager",
     ["CommunicationRequest", "CommunicationResponse", "CommunicationManager"]),
    ("pilot.eventservice.esprocess", ["ESHook", "ESManager", "MessageThread", "ESProcess"]),
    ("pilot.eventservice.esprocess.esprocess", ["ESProcess"]),
    ("pilot.eventservice.esprocess.eshook", ["ESHook"]),
    ("pilot.eventservice.esprocess.esmanager", ["ESManager"]),
    ("pilot.eventservice.esprocess.esmessage", ["MessageThread"]),
    ("pilot.eventservice.workexecutor.workexecutor", ["WorkExecutor"]),
    ("pilot.eventservice.workexecutor.plugins.genericexecutor", ["GenericExecutor"]),
    ("pilot.eventservice.workexecutor.plugins.baseexecutor", ["BaseExecutor"]),
    ("pilot.api.es_data", ["StageInESClient", "StageOutESClient"]),
    ("pilot.control.payloads.eventservice", ["EventServiceExecutor"]),
    ("pilot.control.payloads.selection", ["executor_for"]),
    ("pilot.control.payloads.eventservicemerge", ["EventServiceMergeExecutor"]),
])
def test_names_import(module, names):
    mod = importlib.import_module(module)
    for name in names:
        assert callable(getattr(mod, name)), f"{module}.{name}"


def test_thread_shaped_names():
    import threading

    from pilot.eventservice.communicationmanager import CommunicationManager
    from pilot.eventservice.esprocess import ESProcess, MessageThread
    from pilot.eventservice.workexecutor.plugins.genericexecutor import GenericExecutor

    for cls in (CommunicationManager, ESProcess, MessageThread, GenericExecutor):
        assert issubclass(cls, threading.Thread)


def test_work_executor_plugins():
    from pilot.eventservice.workexecutor import WorkExecutor
    from pilot.eventservice.workexecutor.plugins.genericexecutor import GenericExecutor
    from pilot.eventservice.workexecutor.workexecutor import plugin_class

    assert plugin_class("generic") is GenericExecutor and plugin_class("") is GenericExecutor
    work = WorkExecutor(args={"executor_type": "generic"})
    assert work.get_plugin_confs()["class"].endswith("genericexecutor.GenericExecutor")
    for name in ("raythena", "hpo", "nonsense"):
        with pytest.raises(NotImplementedFailure) as info:
            WorkExecutor(args={"executor_type": name}).start()
        assert info.value.code == ErrorCodes.NOTIMPLEMENTED
    with pytest.raises(SetupFailure):
        WorkExecutor().stop()


def test_es_hook_and_manager_contract():
    from pilot.eventservice.esprocess import ESHook, ESManager

    with pytest.raises(SetupFailure):
        ESManager(object())
    hook = ESHook()
    with pytest.raises(NotImplementedFailure):
        hook.get_payload()
    with pytest.raises(NotImplementedFailure):
        hook.get_event_ranges(1)
    with pytest.raises(NotImplementedFailure):
        hook.handle_out_message({})
    assert ESManager(hook).hook is hook


def test_inject_channel():
    """Pilot 2's forms (esprocess.init_yampl_socket): export, appended --preExec, flag put into a preExec."""
    from pilot.eventservice.esprocess.esprocess import inject_channel

    name = "EventService_EventRanges_1"
    flag = 'jps.AthenaMPFlags.EventRangeChannel="EventService_EventRanges_1"'
    assert inject_channel("./run.sh --x", name) == (
        "./run.sh --x --preExec 'from AthenaMP.AthenaMPFlags import jobproperties as jps;" + flag + "'")
    assert inject_channel("Sim_tf.py --a=1", name) == (
        "Sim_tf.py --a=1 --preExec 'from AthenaMP.AthenaMPFlags import jobproperties as jps;" + flag + "'")
    line = "Sim_tf.py --preExec 'a=1' --b"
    assert inject_channel(line, name) == (
        "Sim_tf.py --preExec 'from AthenaMP.AthenaMPFlags import jobproperties as jps;" + flag + "' 'a=1' --b")
    line = "Sim_tf.py --preExec 'from AthenaMP.AthenaMPFlags import jobproperties as jps;x=1'"
    assert inject_channel(line, name) == (
        "Sim_tf.py --preExec 'from AthenaMP.AthenaMPFlags import jobproperties as jps;" + flag + ";x=1'")
    line = "run.sh --channel $PILOT_EVENTRANGECHANNEL"
    assert inject_channel(line, name) == 'export PILOT_EVENTRANGECHANNEL="EventService_EventRanges_1"; ' + line
    odd = "Sim_tf.py --preExec=x"  # neither form Pilot 2 knows: left as it is (with a warning)
    assert inject_channel(odd, name) == odd


def test_alrb_container_options_get_the_channel_socket_bound():
    from pilot.api.container import Bind
    from pilot.user.atlas.container import _with_binds

    socket_file = "/tmp/zmq_EventService_EventRanges_1"
    assert _with_binds("-C", [Bind(socket_file, socket_file)]) == f"-C -B {socket_file}:{socket_file}"
    assert _with_binds("--contain -B /cvmfs", None) == "--contain -B /cvmfs"


def test_ranges_athenamp_would_misread_are_named():
    from pilot.eventservice.esprocess.esprocess import athenamp_unsafe

    good = {"eventRangeID": "1-2-3", "startEvent": 1, "lastEvent": 5, "GUID": "G", "PFN": "root://h:1094//f"}
    assert athenamp_unsafe(good) == ""  # a ':' in a value is fine: AthenaMP splits at the first one
    assert "nested" in athenamp_unsafe(dict(good, extra={"a": 1}))
    assert "LFN" in athenamp_unsafe(dict(good, LFN="a,b"))
    assert athenamp_unsafe("text") == "not an object"


def test_alrb_line_of_an_es_payload_binds_the_channel_socket(tmp_path):
    from types import SimpleNamespace

    from pilot.api.container import Bind
    from pilot.user.atlas.container import alrb_wrapper

    job = SimpleNamespace(workdir=str(tmp_path), payload_setup={}, alrbuserplatform="centos7", imagename="",
                          platform="", jobid="7", containeroptions={})
    socket_file = "/tmp/zmq_EventService_EventRanges_9"
    line = alrb_wrapper("Sim_tf.py --preExec 'x'", job, SimpleNamespace(container_options=""),
                        binds=[Bind(socket_file, socket_file)])
    assert line.endswith(f"-e '-C -B {socket_file}:{socket_file}'")
    assert "Sim_tf.py --preExec 'x'" in (tmp_path / "container_script.sh").read_text()
