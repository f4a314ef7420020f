"""Plug-in functions are checked at load against the contract's signatures (pluggy-style)."""

import sys
import types

import pytest

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PluginError, UnknownCopytool
from pilot.common.pluginfactory import (CopytoolPlugin, PluginFactory, UserCommonPlugin, UserJobDataPlugin,
                                        contract_signature, signature_mismatches, signature_problem)
from pilot.user.generic import common as generic_common
from pilot.user.generic import jobdata as generic_jobdata


def problem(protocol, name, function):
    import inspect

    return signature_problem(contract_signature(protocol, name), inspect.signature(function))


def test_what_fits_the_copytool_contract():
    def kwargs_only_catch_all(files, **kwargs): return files
    def renamed_but_star_args(*args, **kwargs): return args[0]
    def more_keywords(files, workdir="", stop_event=None, **kwargs): return files
    for function in (kwargs_only_catch_all, renamed_but_star_args, more_keywords):
        assert problem(CopytoolPlugin, "copy_in", function) is None


def test_what_does_not_fit_the_copytool_contract():
    def no_kwargs(files): return files
    def nothing(): return []
    def extra_required(files, workdir, **kwargs): return files
    def extra_keyword_only(files, *, token, **kwargs): return files
    assert "takes no **kwargs" in problem(CopytoolPlugin, "copy_in", no_kwargs)
    assert "does not take 'files'" in problem(CopytoolPlugin, "copy_in", nothing)
    assert "requires 'workdir'" in problem(CopytoolPlugin, "copy_in", extra_required)
    assert "requires the keyword 'token'" in problem(CopytoolPlugin, "copy_in", extra_keyword_only)


def test_named_and_optional_parameters_of_a_user_contract():
    def renamed(payload): return True
    def fits(job, strict=False): return True
    assert "has 'payload' where the contract has 'job'" in problem(UserCommonPlugin, "validate", renamed)
    assert problem(UserCommonPlugin, "validate", fits) is None

    def drops_an_optional(value): return "", ""
    def catch_all(value, **kwargs): return ""
    assert "does not take 'exclusions'" in problem(UserJobDataPlugin, "jobparams_postfiltering", drops_an_optional)
    assert problem(UserJobDataPlugin, "jobparams_postfiltering", catch_all) is None


def test_the_shipped_plugins_fit_their_contracts():
    assert signature_mismatches(generic_common, UserCommonPlugin) == []
    assert signature_mismatches(generic_jobdata, UserJobDataPlugin) == []


def copytool_module(name, **functions):
    module = types.ModuleType(name)
    module.is_valid_for_copy_in = lambda files: True
    module.is_valid_for_copy_out = lambda files: True
    module.copy_in = lambda files, **kwargs: files
    module.copy_out = lambda files, **kwargs: files
    for key, value in functions.items():
        setattr(module, key, value)
    return module


def test_a_copytool_with_a_bad_signature_is_refused_at_load_with_both_signatures(monkeypatch):
    def copy_out(files, workdir): return files  # no **kwargs: the Data API's keywords would be a TypeError
    monkeypatch.setitem(sys.modules, "tests_fake.badtool", copytool_module("tests_fake.badtool", copy_out=copy_out))
    factory = PluginFactory({"badtool": "tests_fake.badtool"})
    with pytest.raises(UnknownCopytool) as info:
        factory.load_copytool("badtool")
    text = str(info.value)
    assert info.value.get_error_code() == ErrorCodes.UNKNOWNCOPYTOOL
    assert "tests_fake.badtool.copy_out" in text  # the plug-in and the function
    assert "the plug-in has copy_out(files, workdir)" in text
    assert "the contract (CopytoolPlugin) is copy_out(files: list, **kwargs: Any) -> list" in text


def test_a_user_plugin_with_a_bad_signature_is_refused_at_load(monkeypatch):
    package = types.ModuleType("pilot.user.badsig")
    package.__path__ = []
    module = types.ModuleType("pilot.user.badsig.common")
    for name in dir(generic_common):
        if not name.startswith("__"):
            setattr(module, name, getattr(generic_common, name))
    module.validate = lambda job, strict: True  # the pilot passes the job only
    monkeypatch.setitem(sys.modules, "pilot.user.badsig", package)
    monkeypatch.setitem(sys.modules, "pilot.user.badsig.common", module)
    with pytest.raises(PluginError) as info:
        PluginFactory().load_user_module("badsig", "common")
    text = str(info.value)
    assert info.value.get_error_code() == ErrorCodes.NOTIMPLEMENTED == 1300
    assert "pilot.user.badsig.common.validate requires 'strict'" in text
    assert "the plug-in has validate(job, strict)" in text and "validate(job: JobData) -> bool" in text


def test_an_optional_copytool_function_is_checked_when_defined(monkeypatch):
    def parallel_transfers(kwargs): return True  # the Data API passes (kwargs, is_stagein)
    module = copytool_module("tests_fake.halftool", parallel_transfers=parallel_transfers)
    monkeypatch.setitem(sys.modules, "tests_fake.halftool", module)
    with pytest.raises(UnknownCopytool, match=r"tests_fake.halftool.parallel_transfers does not take 'is_stagein'"):
        PluginFactory({"halftool": "tests_fake.halftool"}).load_copytool("halftool")
    module.parallel_transfers = lambda kwargs, is_stagein=True: False
    assert PluginFactory({"halftool": "tests_fake.halftool"}).load_copytool("halftool") is module
