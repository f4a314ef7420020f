"""QueueData / StorageData: field mapping, type coercion, unknown fields, overrides."""

import pytest

from pilot.info.basedata import CoercionError, to_bool, to_dict, to_int, to_list
from pilot.info.queuedata import QueueData, parse_container_type, resource_name
from pilot.info.storagedata import StorageData, parse_storages

RAW = {
    "nickname": "TEST_QUEUE", "panda_resource": "TEST_RES", "atlas_site": "TEST_SITE", "cmtconfig": "x86_64-el9",
    "state": "ACTIVE", "status": "online", "maxtime": "86400", "timefloor": "10", "maxwdir": "14336",
    "maxinputsize": 14336, "maxrss": "2000", "corecount": "8", "pledgedcpu": "-1", "zip_time_gap": None,
    "copytools": {"rucio": {"setup": ""}, "mv": {}}, "acopytools": {"pr": "rucio", "pw": ["rucio", "mv"]},
    "astorages": {"pr": ["DISK_A"], "pw": ["DISK_B"]}, "direct_access_lan": "True", "direct_access_wan": False,
    "allow_lan": "true", "use_pcache": "0", "container_type": "singularity:pilot;docker:wrapper",
    "container_options": "None", "catchall": "singularity_options='-B /cvmfs' remoteio_test=false flag",
    "is_cvmfs": True, "type": "unified", "appdir": "/cvmfs/x", "pilot_manager": "someone", "extra": [1, 2],
}


def test_fields_mapped_and_coerced():
    q = QueueData.from_dict(RAW)
    assert (q.name, q.resource, q.site, q.platform) == ("TEST_QUEUE", "TEST_RES", "TEST_SITE", "x86_64-el9")
    assert q.maxtime == 86400 and q.maxwdir == 14336 and q.maxrss == 2000 and q.corecount == 8
    assert q.timefloor_minutes == 10 and q.timefloor == 600
    assert q.direct_access_lan is True and q.direct_access_wan is False and q.use_pcache is False
    assert q.acopytools == {"pr": ["rucio"], "pw": ["rucio", "mv"]}
    assert q.copytools == {"rucio": {"setup": ""}, "mv": {}}
    assert q.container_type == {"pilot": "singularity", "wrapper": "docker"}
    assert q.container_options == "-B /cvmfs"  # from catchall since container_options was 'None'
    assert q.es_stageout_gap == 600  # opportunistic default
    assert q.is_active()


def test_unknown_fields_kept_in_params_and_readable_as_attributes():
    q = QueueData.from_dict(RAW)
    assert q.params["pilot_manager"] == "someone"
    assert q.extra == [1, 2]
    with pytest.raises(AttributeError):
        q.no_such_field  # noqa: B018


def test_plain_attribute_assignment_as_harvester_does():
    q = QueueData.from_dict(RAW)
    q.direct_access_lan = False
    q.direct_access_wan = False
    assert not q.direct_access_lan and not q.direct_access_wan


def test_catchall_values():
    q = QueueData.from_dict(RAW)
    assert q.catchall_value("remoteio_test") == "false"
    assert q.catchall_value("singularity_options") == "-B /cvmfs"
    assert q.catchall_value("flag") is True
    assert q.catchall_value("absent", "d") == "d"


def test_overrides_accept_external_and_internal_names():
    q = QueueData.from_dict(RAW)
    q.apply_overrides({"maxwdir": "100", "cmtconfig": "other", "site": "S2", "timefloor": 0, "newkey": 5})
    assert q.maxwdir == 100 and q.platform == "other" and q.site == "S2" and q.timefloor == 0
    assert q.params["newkey"] == 5
    q.apply_overrides({"acopytools": "{'pr': ['mv']}"})
    assert q.acopytools == {"pr": ["mv"]}


def test_bad_override_raises():
    q = QueueData.from_dict(RAW)
    with pytest.raises(CoercionError):
        q.apply_overrides({"maxwdir": "lots"})


def test_bad_structural_field_and_bad_scalar_raise():
    with pytest.raises(CoercionError):
        QueueData.from_dict({"nickname": "Q", "copytools": "{not json"})
    with pytest.raises(CoercionError, match="maxrss"):  # mis-typed queue data is 1341, not a silent default
        QueueData.from_dict({"nickname": "Q", "maxrss": "huge"})


@pytest.mark.parametrize("field, value", [("maxtime", -1), ("maxwdir", "-5"), ("maxrss", -100), ("timefloor", -3),
                                          ("corecount", -2), ("maxinputsize", -2), ("pledgedcpu", -7),
                                          ("zip_time_gap", -1)])
def test_nonsense_resource_limits_raise(field, value):
    with pytest.raises(CoercionError, match=field):
        QueueData.from_dict({"nickname": "Q", field: value})
    q = QueueData.from_dict({"nickname": "Q"})
    with pytest.raises(CoercionError, match=field):
        q.apply_overrides({field: value})


def test_special_values_are_accepted():
    q = QueueData.from_dict({"nickname": "Q", "maxinputsize": -1, "pledgedcpu": -1, "corecount": 0, "maxtime": 0})
    assert q.maxinputsize == -1 and q.pledgedcpu == -1 and q.corecount == 1 and q.es_stageout_gap == 600


def test_copytools_as_list_and_string():
    assert QueueData.from_dict({"nickname": "Q", "copytools": ["mv", "rucio"]}).copytools == {"mv": {}, "rucio": {}}
    assert QueueData.from_dict({"nickname": "Q", "copytools": "mv,rucio"}).copytools == {"mv": {}, "rucio": {}}


def test_not_a_dict():
    with pytest.raises(CoercionError):
        QueueData.from_dict(["x"])


def test_parse_container_type():
    assert parse_container_type("singularity:pilot") == {"pilot": "singularity"}
    assert parse_container_type("") == {}
    assert parse_container_type("bad;x:y:z") == {}


@pytest.mark.parametrize("value,expected", [("1", 1), (2.7, 2), ("", 0), (None, 0), ("NULL", 0), ("3.0", 3)])
def test_to_int(value, expected):
    assert to_int(value) == expected


def test_converters_reject_garbage():
    with pytest.raises(CoercionError):
        to_int("x")
    with pytest.raises(CoercionError):
        to_bool("maybe")
    with pytest.raises(CoercionError):
        to_dict("[1, 2]")
    assert to_list("a, b") == ["a", "b"] and to_list('["a"]') == ["a"] and to_list(None) == []


STORAGE = {
    "name": "DISK_A", "id": "12", "type": "DATADISK", "token": "ATLASDATADISK", "is_deterministic": True,
    "state": "ACTIVE", "site": "SITE", "resource": {"bucket_id": "b1"},
    "arprotocols": {"read_lan": [{"endpoint": "root://h:1094", "path": "/data", "flavour": "XROOTD", "id": 3}],
                    "write_wan": [{"endpoint": "davs://h:443", "path": "/d", "flavour": "WEBDAV", "id": 4}]},
    "rprotocols": {"3": {"settings": {"access_key": "a"}}}, "other": 1,
}


def test_storage_data():
    s = StorageData.from_dict(STORAGE)
    assert s.pk == 12 and s.name == "DISK_A" and s.is_deterministic and s.bucket_id == "b1"
    assert s.get_read_protocols()[0]["endpoint"] == "root://h:1094"
    assert s.get_write_protocols()[0]["id"] == 4  # no write_lan: falls back to write_wan
    assert s.protocol_settings(3) == {"access_key": "a"}
    assert s.params == {"other": 1}
    s.apply_overrides({"is_deterministic": "false"})
    assert s.is_deterministic is False


def test_parse_storages_shapes():
    assert list(parse_storages({"DISK_A": STORAGE})) == ["DISK_A"]
    assert list(parse_storages([STORAGE])) == ["DISK_A"]
    assert list(parse_storages(STORAGE)) == ["DISK_A"]
    with pytest.raises(ValueError):
        parse_storages("text")


def test_resource_name_is_the_queue_resource_else_the_queue():
    assert resource_name(QueueData.from_dict(RAW), "CE_QUEUE") == "TEST_RES"
    assert resource_name(QueueData.from_dict({"nickname": "Q"}), "CE_QUEUE") == "CE_QUEUE"
    assert resource_name(None, "CE_QUEUE") == "CE_QUEUE"


def test_parse_container_type_copies_a_dict():
    given = {" pilot ": "singularity"}
    assert parse_container_type(given) == {"pilot": "singularity"} and given == {" pilot ": "singularity"}
