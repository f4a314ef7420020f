"""The rucio copytool refuses a server configuration with a clear message and uses a combined one as a client."""

import os

from pilot.copytool.rucio import config_path, config_problem

CLIENT = "[client]\nrucio_host = http://127.0.0.1:1\nauth_host = http://127.0.0.1:1\n"
SERVER = "[database]\ndefault = sqlite:////tmp/x.db\n"


def use(tmp_path, monkeypatch, text):
    path = tmp_path / "rucio.cfg"
    path.write_text(text)
    for var in ("RUCIO_HOME", "VIRTUAL_ENV", "CONDA_PREFIX", "RUCIO_CLIENT_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RUCIO_CONFIG", str(path))
    return str(path)


def test_client_configuration_is_fine(tmp_path, monkeypatch):
    path = use(tmp_path, monkeypatch, CLIENT)
    assert config_path() == path and config_problem() == ""
    assert "RUCIO_CLIENT_MODE" not in os.environ


def test_server_configuration_is_refused(tmp_path, monkeypatch):
    use(tmp_path, monkeypatch, SERVER)
    problem = config_problem()
    assert "[database]" in problem and "RUCIO_CONFIG" in problem


def test_combined_configuration_runs_in_client_mode(tmp_path, monkeypatch):
    use(tmp_path, monkeypatch, SERVER + CLIENT)
    assert config_problem() == "" and os.environ["RUCIO_CLIENT_MODE"] == "1"


def test_search_order(tmp_path, monkeypatch):
    use(tmp_path, monkeypatch, CLIENT)
    monkeypatch.delenv("RUCIO_CONFIG")
    home = tmp_path / "home" / "etc"
    home.mkdir(parents=True)
    (home / "rucio.cfg").write_text(CLIENT)
    monkeypatch.setenv("RUCIO_HOME", str(tmp_path / "home"))
    assert config_path() == str(home / "rucio.cfg")
    monkeypatch.setenv("RUCIO_HOME", str(tmp_path / "nowhere"))
    if not os.path.exists("/opt/rucio/etc/rucio.cfg"):
        assert config_path() == "" and "no Rucio configuration" in config_problem()
