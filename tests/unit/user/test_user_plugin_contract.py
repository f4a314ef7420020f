"""Every experiment plug-in provides the whole contract of compat 9; a gap fails at load, naming it."""

from __future__ import annotations

import pytest

import pilot.user
from pilot.common.exception import PluginError
from pilot.common.pluginfactory import USER_PLUGIN_PROTOCOLS, PluginFactory, required_functions

MODULES = ("common", "container", "diagnose", "jobdata", "jobmetrics", "loopingjob_definitions", "memory",
           "monitoring", "proxy", "cpu", "metadata", "utilities")


def test_the_protocols_cover_every_module_of_the_contract():
    assert set(USER_PLUGIN_PROTOCOLS) == set(MODULES)


@pytest.mark.parametrize("experiment", ["generic", "atlas", "example"])
@pytest.mark.parametrize("module", MODULES)
def test_plugin_module_loads_and_is_complete(experiment, module):
    loaded = PluginFactory().load_user_module(experiment, module)
    for name in required_functions(USER_PLUGIN_PROTOCOLS[module]):
        assert callable(getattr(loaded, name)), f"{experiment}.{module}.{name}"


def _fake_experiment(tmp_path, monkeypatch, name, files):
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for filename, text in files.items():
        (package / filename).write_text(text)
    monkeypatch.setattr(pilot.user, "__path__", list(pilot.user.__path__) + [str(tmp_path)])


def test_missing_function_is_named_at_load(tmp_path, monkeypatch):
    # a copy of the generic memory module without memory_usage()
    _fake_experiment(tmp_path, monkeypatch, "brokenexp", {
        "memory.py": "def allow_memory_usage_verifications():\n    return False\n"})
    with pytest.raises(PluginError) as info:
        PluginFactory().load_user_module("brokenexp", "memory")
    assert "memory_usage" in info.value.diag and "pilot.user.brokenexp.memory" in info.value.diag
    assert info.value.code == 1300


def test_missing_module_is_named_at_load(tmp_path, monkeypatch):
    _fake_experiment(tmp_path, monkeypatch, "halfexp", {})
    with pytest.raises(PluginError) as info:
        PluginFactory().load_user_module("halfexp", "proxy")
    assert "pilot.user.halfexp.proxy" in info.value.diag


def test_a_new_experiment_reusing_generic_loads(tmp_path, monkeypatch):
    _fake_experiment(tmp_path, monkeypatch, "newexp", {
        "cpu.py": "from pilot.user.generic.cpu import set_core_counts  # noqa: F401\n"})
    assert PluginFactory().load_user_module("newexp", "cpu").set_core_counts
