"""Primary and alternative output storages by Pilot 2's rules (StageOutClient.prepare_destinations)."""

import types

import pytest

from pilot.api.data import StageOutClient
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.info.filespec import FileSpec


def client(astorages, copytools=None):
    queuedata = types.SimpleNamespace(astorages=astorages, copytools=copytools or {"gfal": {}}, acopytools={},
                                      acopytools_schemas={})
    return StageOutClient(types.SimpleNamespace(queuedata=queuedata), acopytools={"default": ["gfal"]})


def out(ddm=""):
    return FileSpec(lfn="o.root", filetype="output", ddmendpoint=ddm)


def test_rules():
    c = client({"pw": ["A", "B", "C"]})
    none, local, last, remote = out(), out("B"), out("C"), out("REMOTE")
    c.prepare_destinations([none, local, last, remote], ["pw", "w"])
    assert (none.ddmendpoint, none.ddmendpoint_alt) == ("A", "B")
    assert (local.ddmendpoint, local.ddmendpoint_alt) == ("B", "C")
    assert (last.ddmendpoint, last.ddmendpoint_alt) == ("C", "A")  # the list is cycled
    assert (remote.ddmendpoint, remote.ddmendpoint_alt) == ("A", "REMOTE")


def test_nucleus_is_never_the_alternative():
    c = client({"pw": ["A", "NUC", "C"]})
    f, remote = out("A"), out("NUC")
    c.prepare_destinations([f], "pw", alt_exclude=["NUC"])
    assert f.ddmendpoint_alt == "C"
    c2 = client({"pw": ["A"]})
    c2.prepare_destinations([remote], "pw", alt_exclude=["NUC"])
    assert (remote.ddmendpoint, remote.ddmendpoint_alt) == ("A", None)


def test_one_storage_has_no_alternative():
    f = out("A")
    client({"pw": ["A"]}).prepare_destinations([f], "pw")
    assert f.ddmendpoint_alt is None


def test_no_storages():
    with pytest.raises(PilotException) as err:
        client({}).prepare_destinations([out()], ["pw"])
    assert err.value.get_error_code() == ErrorCodes.NOSTORAGE
    f = out()
    client({}, copytools={"mv": {}}).prepare_destinations([f], ["pw"])  # mv queues need none
    assert f.ddmendpoint == ""
