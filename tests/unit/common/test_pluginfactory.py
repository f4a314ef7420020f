"""Plug-in loading: name mapping, contract checks, error codes, caching."""

import sys
import types

import pytest

from pilot.common.exception import MiddlewareImportFailure, PilotException, PluginError, UnknownCopytool
from pilot.common.pluginfactory import (
    COPYTOOL_DEFAULTS, CopytoolPlugin, PluginFactory, USER_PLUGIN_PROTOCOLS, UserCommonPlugin,
    load_user_module, missing_functions, required_functions,
)


def _function(*args, **kwargs):
    return None


def make_module(name, functions, **attributes):
    module = types.ModuleType(name)
    for function in functions:
        setattr(module, function, _function)
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


COPYTOOL_FUNCTIONS = ["copy_in", "copy_out", "is_valid_for_copy_in", "is_valid_for_copy_out"]


def test_protocol_function_lists():
    assert required_functions(CopytoolPlugin) == COPYTOOL_FUNCTIONS
    common = required_functions(UserCommonPlugin)
    for name in ("sanity_check", "validate", "verify_job", "get_payload_command", "remove_redundant_files",
                 "get_utility_commands", "get_utility_command_setup", "get_utility_command_kill_signal",
                 "get_utility_command_output_filename", "post_utility_command_action",
                 "post_prestagein_utility_command", "update_stagein", "get_metadata", "update_server",
                 "allow_timefloor", "process_debug_command", "preprocess_debug_command", "update_output_for_hpo"):
        assert name in common
    assert set(USER_PLUGIN_PROTOCOLS) == {"common", "container", "diagnose", "jobdata", "jobmetrics",
                                          "loopingjob_definitions", "memory", "monitoring", "proxy", "cpu",
                                          "metadata", "utilities"}
    for protocol in USER_PLUGIN_PROTOCOLS.values():
        assert required_functions(protocol)


def test_load_copytool_with_alias_and_defaults(monkeypatch):
    module = make_module("pilot.copytool.gfal", COPYTOOL_FUNCTIONS, require_replicas=True)
    monkeypatch.setitem(sys.modules, "pilot.copytool.gfal", module)
    factory = PluginFactory()
    loaded = factory.load_copytool("gfalcopy")
    assert loaded is module
    assert factory.load_copytool("GFAL") is module
    assert module.require_replicas is True  # kept
    for key, default in COPYTOOL_DEFAULTS.items():
        if key != "require_replicas":
            assert getattr(module, key) == default
    assert module.require_protocols is True and module.check_availablespace is True


def test_copytool_missing_function_is_named(monkeypatch):
    module = make_module("pilot.copytool.xrdcp", ["copy_in", "copy_out", "is_valid_for_copy_in"])
    monkeypatch.setitem(sys.modules, "pilot.copytool.xrdcp", module)
    with pytest.raises(UnknownCopytool) as info:
        PluginFactory().load_copytool("xrdcp")
    assert info.value.code == 1323
    assert "is_valid_for_copy_out" in info.value.diag


def test_unknown_copytool_name():
    with pytest.raises(PilotException) as info:
        PluginFactory().load_copytool("teleport")
    assert info.value.code == 1323 and "teleport" in info.value.diag


def test_copytool_module_absent():
    factory = PluginFactory(copytool_aliases={"ghost": "ghost_tool_that_does_not_exist"})
    with pytest.raises(UnknownCopytool) as info:
        factory.load_copytool("ghost")
    assert info.value.code == 1323 and "pilot.copytool.ghost_tool_that_does_not_exist" in info.value.diag


def test_copytool_dependency_failure_is_middleware_error(tmp_path, monkeypatch):
    package = tmp_path / "fakepkg_dep"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "brokentool.py").write_text("import some_middleware_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    factory = PluginFactory(copytool_aliases={"broken": "fakepkg_dep.brokentool"})
    with pytest.raises(MiddlewareImportFailure) as info:
        factory.load_copytool("broken")
    assert info.value.code == 1342 and "some_middleware_that_is_not_installed" in info.value.diag


def test_copytool_from_full_module_path_and_cache(tmp_path, monkeypatch):
    package = tmp_path / "fakepkg_ok"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "goodtool.py").write_text(
        "def copy_in(files, **kw):\n    return files\n"
        "def copy_out(files, **kw):\n    return files\n"
        "def is_valid_for_copy_in(files):\n    return True\n"
        "def is_valid_for_copy_out(files):\n    return True\n"
        "allowed_schemas = ['root']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    factory = PluginFactory(copytool_aliases={"good": "fakepkg_ok.goodtool"})
    module = factory.load_copytool("good")
    assert module.allowed_schemas == ["root"] and module.require_protocols is True
    module.marker = 1
    assert factory.load_copytool("good").marker == 1


def _install_user_module(monkeypatch, experiment, name, functions):
    package = f"pilot.user.{experiment}"
    if package not in sys.modules:
        monkeypatch.setitem(sys.modules, package, types.ModuleType(package))
    module = make_module(f"{package}.{name}", functions)
    monkeypatch.setitem(sys.modules, f"{package}.{name}", module)
    return module


def test_user_module_complete(monkeypatch):
    for kind, protocol in USER_PLUGIN_PROTOCOLS.items():
        module = _install_user_module(monkeypatch, "fakeexp", kind, required_functions(protocol))
        assert PluginFactory().load_user_module("FakeExp", kind) is module
        assert missing_functions(module, protocol) == []


def test_user_module_missing_function_is_named(monkeypatch):
    functions = [name for name in required_functions(UserCommonPlugin) if name != "get_payload_command"]
    _install_user_module(monkeypatch, "fakeexp2", "common", functions)
    with pytest.raises(PluginError) as info:
        load_user_module("fakeexp2", "common")
    assert info.value.code == 1300
    assert "get_payload_command" in info.value.diag and "pilot.user.fakeexp2.common" in info.value.diag


def test_user_module_non_callable_counts_as_missing(monkeypatch):
    module = _install_user_module(monkeypatch, "fakeexp3", "memory", ["allow_memory_usage_verifications"])
    module.memory_usage = "not a function"
    with pytest.raises(PluginError) as info:
        load_user_module("fakeexp3", "memory")
    assert "memory_usage" in info.value.diag


def test_user_module_without_protocol_is_not_checked(monkeypatch):
    module = _install_user_module(monkeypatch, "fakeexp4", "setup", [])
    assert load_user_module("fakeexp4", "setup") is module


def test_missing_experiment_or_module():
    with pytest.raises(PluginError) as info:
        load_user_module("no_such_experiment_xyz", "common")
    assert info.value.code == 1300 and "pilot.user.no_such_experiment_xyz.common" in info.value.diag


def test_invalid_names_rejected():
    with pytest.raises(PluginError):
        load_user_module("../etc", "common")
    with pytest.raises(PluginError):
        load_user_module("generic", "common;rm")
