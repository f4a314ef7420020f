"""Pure logic of the objectstore copytool: where objects live, which S3 keys are used, what is registered."""

import io
import zlib

import pytest

from pilot.api.replicas import query_schemes
from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.common.pluginfactory import load_copytool
from pilot.copytool import objectstore
from pilot.copytool.common import deterministic_path
from pilot.copytool.s3 import split_url
from pilot.info import FileSpec
from pilot.info.storagedata import StorageData

PROTO = {"endpoint": "s3://os.example.org:443", "path": "/atlas_es/", "id": 7}


def storage(kind="OS_ES", deterministic=False, name="OS"):
    return StorageData(name=name, type=kind, is_deterministic=deterministic)


def spec(**kw):
    return FileSpec(scope="user.x", lfn="EVNT.01.pool.root", ddmendpoint="OS", **kw)


def test_contract_attributes():
    module = load_copytool("objectstore")
    assert module.require_replicas and module.require_protocols and module.allowed_schemas == ["s3"]
    assert module.is_valid_for_copy_in([spec()]) and not module.is_valid_for_copy_out([FileSpec(lfn="a")])
    assert query_schemes(module.allowed_schemas) == ["s3"]  # Rucio is asked for s3 PFNs only


def test_surl_on_an_object_store_is_endpoint_path_lfn_and_records_the_protocol():
    f = spec()
    assert objectstore.resolve_surl(f, PROTO, {"OS": storage()}) == \
        {"surl": "s3://os.example.org:443/atlas_es/EVNT.01.pool.root"}
    assert f.protocol_id == 7
    assert split_url("s3://os.example.org:443/atlas_es/EVNT.01.pool.root") == \
        ("https://os.example.org:443", "atlas_es", "EVNT.01.pool.root")


def test_surl_on_a_deterministic_storage_uses_the_rucio_path():
    surl = objectstore.resolve_surl(spec(), PROTO, {"OS": storage("DATADISK", True)})["surl"]
    assert surl == "s3://os.example.org:443/atlas_es/" + deterministic_path("user.x", "EVNT.01.pool.root")
    assert split_url(surl)[1:] == ("atlas_es", deterministic_path("user.x", "EVNT.01.pool.root"))


def test_surl_refused_on_other_non_deterministic_storages_and_unknown_ones():
    with pytest.raises(PilotException) as err:
        objectstore.resolve_surl(spec(), PROTO, {"OS": storage("DATADISK", False)})
    assert err.value.get_error_code() == ErrorCodes.NONDETERMINISTICDDM
    with pytest.raises(PilotException) as err:
        objectstore.resolve_surl(spec(), PROTO, {})
    assert err.value.get_error_code() == ErrorCodes.NOSTORAGE


class Keys:
    def __init__(self, reply):
        self.reply, self.calls = reply, []

    def get_key_pair(self, public, private):
        self.calls.append((public, private))
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


NAMED = {"access_key": "pub-name", "secret_key": "priv-name", "is_secure": False, "region": "r1"}
GOOD = {"StatusCode": 0, "publicKey": "AK", "privateKey": "SK"}


def test_keys_from_getkeypair_by_the_names_in_the_protocol_settings():
    keys, cache = Keys(GOOD), {}
    creds = objectstore.resolve_credentials(NAMED, storage(), {}, keys, cache)
    assert creds.source == "getKeyPair" and keys.calls == [("pub-name", "priv-name")]
    assert creds.settings == {"access_key": "AK", "secret_key": "SK", "is_secure": False, "region": "r1"}
    objectstore.resolve_credentials(NAMED, storage(), {}, keys, cache)
    assert len(keys.calls) == 1  # one server call per key pair and call of the tool


def test_getkeypair_only_for_object_stores_then_environment():
    env = {"S3_ACCESS_KEY": "EAK", "S3_SECRET_KEY": "ESK", "S3_IS_SECURE": "True"}
    keys = Keys(GOOD)
    creds = objectstore.resolve_credentials(NAMED, storage("DATADISK", True), env, keys)
    assert creds.source == "environment" and not keys.calls
    assert (creds.settings["access_key"], creds.settings["secret_key"], creds.settings["is_secure"]) == \
        ("EAK", "ESK", True)


@pytest.mark.parametrize("reply", [{"StatusCode": 80, "errorDialog": "no key"}, {"StatusCode": 0},
                                   RuntimeError("server down")])
def test_failed_getkeypair_falls_back(reply):
    env = {"S3_ACCESS_KEY": "EAK", "S3_SECRET_KEY": "ESK"}
    assert objectstore.resolve_credentials(NAMED, storage(), env, Keys(reply)).source == "environment"
    creds = objectstore.resolve_credentials(NAMED, storage(), {}, Keys(reply))
    assert creds.source == "s3" and creds.settings == NAMED  # the s3 tool's lookup: settings, boto3 chain


def test_environment_sets_only_what_is_missing_without_keys():
    creds = objectstore.resolve_credentials({}, None, {"S3_IS_SECURE": "false"})
    assert creds.source == "s3" and creds.settings == {"is_secure": False}
    creds = objectstore.resolve_credentials({"is_secure": True}, None, {"S3_IS_SECURE": "false"})
    assert creds.settings == {"is_secure": True}


def test_reader_sums_what_is_sent():
    data = bytes(range(256)) * 1000
    reader = objectstore.Adler32Reader(io.BytesIO(data))
    while reader.read(4096):
        pass
    assert reader.size == len(data) and not reader.seekable()
    assert reader.hexdigest == f"{zlib.adler32(data) & 0xffffffff:08x}"


def test_replica_record():
    f = spec(guid="0a1b2c3d-0000-1111-2222-333344445555", filesize=12, checksum={"adler32": "0000abcd"})
    f.surl = "s3://os/atlas_es/EVNT.01.pool.root"
    f.remote_checksum = {"adler32": "0000abcd"}
    assert objectstore.replica_record(f, deterministic=False) == {
        "scope": "user.x", "name": "EVNT.01.pool.root", "bytes": 12, "adler32": "0000abcd",
        "meta": {"guid": "0a1b2c3d000011112222333344445555"}, "pfn": f.surl}
    assert "pfn" not in objectstore.replica_record(f, deterministic=True)


def test_a_changed_upload_is_not_registered():
    f = spec(checksum={"adler32": "0000abcd"})
    f.remote_checksum = {"adler32": "0000abce"}
    assert not objectstore._intact(f)
    f.remote_checksum = {"adler32": "abcd"}
    assert objectstore._intact(f)


class Registry:
    def __init__(self, exc=None):
        self.exc, self.calls = exc, []

    def add_replicas(self, rse, files):
        self.calls.append((rse, files))
        if self.exc:
            raise self.exc


def test_register_on_the_alternative_storage_and_classify_failures():
    f = spec(filesize=3, checksum={"adler32": "024d0127"}, ddmendpoint_alt="OS_ALT")
    f.is_altstaged, f.surl = True, "s3://os/b/k"
    registry = Registry()
    objectstore.register(f, {"ddmconf": {}}, registry)
    assert registry.calls[0][0] == "OS_ALT" and registry.calls[0][1][0]["pfn"] == "s3://os/b/k"

    ServerConnectionException = type("ServerConnectionException", (Exception,), {})
    with pytest.raises(PilotException) as err:
        objectstore.register(f, {}, Registry(ServerConnectionException("Cannot connect to the Rucio server.")))
    assert err.value.get_error_code() == ErrorCodes.SERVICENOTAVAILABLE
    Duplicate = type("FileReplicaAlreadyExists", (Exception,), {})
    with pytest.raises(PilotException) as err:
        objectstore.register(f, {}, Registry(Duplicate("The file replica already exists")))
    assert err.value.get_error_code() == ErrorCodes.FILEEXISTS
