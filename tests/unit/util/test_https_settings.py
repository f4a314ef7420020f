"""The settings of the pilot's one HTTP client: proxy variables, the bearer token, --cacert, config keys."""

from __future__ import annotations

import os
import types

import pytest

from pilot.util import httpconn as hc
from pilot.util import https
from tests.faults.hostile_server import HostileServer


def test_proxy_variables_lower_case_first():
    env = {"HTTPS_PROXY": "http://upper:1", "https_proxy": "lower:3128", "HTTP_PROXY": "http://u:p%40@h:8080"}
    settings = hc.ProxySettings.from_environ(env)
    assert settings.https == hc.ProxyURL("lower", 3128)
    assert settings.http.host == "h" and settings.http.port == 8080
    assert settings.http.authorization == "Basic dTpwQA=="  # u:p@


def test_a_proxy_other_than_http_is_refused():
    with pytest.raises(ValueError):
        hc.ProxySettings.from_environ({"https_proxy": "socks5://h:1080"})
    client = https.client_from_config(environ={"https_proxy": "https://h:3128", "no_proxy": "direct.org"})
    with pytest.raises(https.RequestFailure) as info:  # a request that needs it fails at once
        client.post_form("https://panda.example.org/server/panda/getJob", {})
    assert https.failure_info(info.value) == ("proxy", True) and "only http://" in str(info.value)


@pytest.mark.parametrize("no_proxy,host,port,bypass", [
    ("*", "any.where", 443, True),
    ("example.org", "example.org", 443, True),
    ("example.org", "panda.example.org", 443, True),
    (".example.org", "panda.example.org", 443, True),
    ("example.org", "badexample.org", 443, False),
    ("example.org:8443", "example.org", 443, False),
    ("example.org:8443", "example.org", 8443, True),
    ("10.0.0.0/8", "10.1.2.3", 80, True),
    ("10.0.0.0/8", "11.1.2.3", 80, False),
    ("127.0.0.1", "127.0.0.1", 80, True),
    ("[::1]:80", "::1", 80, True),
    ("", "example.org", 443, False),
])
def test_no_proxy(no_proxy, host, port, bypass):
    settings = hc.ProxySettings.from_environ({"https_proxy": "p:1", "http_proxy": "p:1", "no_proxy": no_proxy})
    assert settings.bypass(host, port) is bypass
    assert (settings.for_target("https", host, port) is None) is bypass


def test_cacert_is_made_absolute_and_must_exist(tmp_path, monkeypatch):
    (tmp_path / "ca.pem").write_text("x")
    monkeypatch.chdir(tmp_path)
    args = types.SimpleNamespace(cacert="ca.pem", capath=None, url="", port=25443)
    client = https.client_from_args(args, environ={})
    assert client.cacert == str(tmp_path / "ca.pem")
    os.chdir("/")
    assert client.cacert == str(tmp_path / "ca.pem")  # a later chdir (-a) changes nothing
    with pytest.raises(https.HttpSetupError, match="no such file"):
        https.client_from_args(types.SimpleNamespace(cacert=str(tmp_path / "missing.pem"), capath=None),
                               environ={})
    with pytest.raises(https.HttpSetupError, match="no such directory"):
        https.client_from_args(types.SimpleNamespace(cacert=None, capath=str(tmp_path / "nodir")), environ={})


def test_config_keys_reach_the_client():
    cfg = types.SimpleNamespace(Pilot={"http_maxtime": "7", "http_connect_timeout": 3, "http_max_reply_size": 10,
                                       "http_max_decoded_size": 20, "http_stop_maxtime": 2, "http_backoff": 0.5})
    client = https.client_from_config(environ={}, cfg=cfg)
    assert (client.timeout, client.connect_timeout, client.max_reply_size, client.max_decoded_size,
            client.stop_maxtime, client.backoff) == (7.0, 3.0, 10, 20, 2.0, 0.5)
    with pytest.raises(https.HttpSetupError, match="http_maxtime"):
        https.client_from_config(environ={}, cfg=types.SimpleNamespace(Pilot={"http_maxtime": "soon"}))


def test_token_file_and_origin_go_to_the_server_host_only(tmp_path):
    (tmp_path / "token").write_text("tok-1\n")
    env = {"PANDA_AUTH_DIR": str(tmp_path), "PANDA_AUTH_TOKEN": "token", "PANDA_AUTH_ORIGIN": "atlas.pilot"}
    with HostileServer() as server:
        args = types.SimpleNamespace(cacert=None, capath=None, url="http://127.0.0.1", port=server.port)
        client = https.client_from_args(args, environ=env)
        client.post_form(server.url("/ok"), {})
        assert server.headers["/ok"]["authorization"] == "Bearer tok-1"
        assert server.headers["/ok"]["origin"] == "atlas.pilot"
        (tmp_path / "token").write_text("tok-2-longer\n")  # renewed on disk: the next request sends it
        client.post_form(server.url("/ok"), {})
        assert server.headers["/ok"]["authorization"] == "Bearer tok-2-longer"
        client.post_form(f"http://localhost:{server.port}/ok", {})  # another host name: no token
        assert "authorization" not in server.headers["/ok"] and "origin" not in server.headers["/ok"]


def test_token_names_of_pilot3(tmp_path, monkeypatch):
    (tmp_path / "t").write_text("abc")
    home = tmp_path / "home"
    home.mkdir()
    (home / "h").write_text("def")
    assert https.BearerToken.from_environ({"OIDC_AUTH_TOKEN": "t"}, launch_dir=str(tmp_path))._current() == "abc"
    assert https.BearerToken.from_environ({"PANDA_AUTH_TOKEN": "h", "HOME": str(home)},
                                          launch_dir=str(tmp_path))._current() == "def"
    assert https.BearerToken.from_environ({"BEARER_TOKEN": "xyz"}).headers("h") == {"Authorization": "Bearer xyz"}
    assert https.BearerToken.from_environ({"BEARER_TOKEN_FILE": str(tmp_path / "t")})._current() == "abc"
    assert https.BearerToken.from_environ({}, launch_dir=str(tmp_path)) is None


def test_one_client_for_the_whole_pilot(monkeypatch):
    """The info service and trace reports without a client of their own use the registered one."""
    mine = https.HttpClient(proxies=hc.ProxySettings(), retries=1, timeout=5)
    monkeypatch.setattr(https, "_SHARED", https._Shared())
    https.set_shared_client(mine)
    assert https.shared_client() is mine
    from pilot.info.extinfo import ExtInfoProvider
    from pilot.util.tracereport import TraceBatch

    with HostileServer() as server:
        ExtInfoProvider()._http_get(server.url("/ok"))
        batch = TraceBatch(server.url("/ok"), None)
        batch._records.append({"eventType": "get"})
        assert batch.flush() == 1
        assert server.count("/ok") == 2 and mine.stats.requests == 2
