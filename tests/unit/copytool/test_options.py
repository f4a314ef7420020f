"""CopytoolOptions: the typed, frozen options of a copytool call, built at the Data API boundary."""

import dataclasses
import threading

import pytest

from pilot.api.data import StageInClient
from pilot.copytool import mv
from pilot.copytool.common import tool_setting
from pilot.copytool.options import OPTIONS_KEY, CopytoolOptions
from pilot.info import FileSpec


def test_from_kwargs_types_the_known_keys_and_keeps_the_rest():
    stop = threading.Event()
    opts = CopytoolOptions.from_kwargs({
        "workdir": "/w", "copytools": {"mv": {"copy_type": "move"}}, "ddmconf": {"DISK": {"x": 1}},
        "catchall": "mv_x=1", "activity": "pw", "stop_event": stop, "max_workers": "3", "input_dir": None,
        "no_register": "false", "lifetime": "3600", "xrootd_env": {"A": "b"}, "ipv": "IPv4", "job": "J"})
    assert opts.workdir == "/w" and opts.max_workers == 3 and opts.stop_event is stop
    assert opts.activity == ("pw",) and opts.input_dir == "" and opts.no_register is False
    assert opts.lifetime == 3600 and dict(opts.xrootd_env) == {"A": "b"} and opts.job == "J"
    assert dict(opts.extra) == {"ipv": "IPv4"}  # unknown keys are kept, not dropped
    assert opts.get("ipv") == "IPv4" and opts.get("workdir") == "/w" and opts.get("nothing", 5) == 5
    assert opts.copy_type is None  # not given


def test_frozen_and_its_mappings_read_only():
    source = {"DISK": {"x": 1}}
    opts = CopytoolOptions.from_kwargs({"ddmconf": source, "extra_key": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.workdir = "/elsewhere"
    with pytest.raises(TypeError):
        opts.ddmconf["OTHER"] = {}
    with pytest.raises(TypeError):
        opts.extra["x"] = 2
    source["LATER"] = {}
    assert "LATER" not in opts.ddmconf  # a copy: the caller's dict changing later changes nothing


def test_copy_type_given_empty_or_none_is_kept_apart_from_absent():
    assert CopytoolOptions.from_kwargs({"copy_type": None}).copy_type == ""
    assert CopytoolOptions.from_kwargs({"copy_type": ""}).copy_type == ""
    assert CopytoolOptions.from_kwargs({"copy_type": "Move"}).copy_type == "Move"
    with pytest.raises(Exception, match="incorrect copy_type"):
        mv.get_mode({"copy_type": None})
    assert mv.get_mode({}) == "copy"


def test_setting_order_keyword_queue_catchall_default():
    assert CopytoolOptions.from_kwargs({"copy_type": "move"}).setting("mv", "copy_type") == "move"
    assert CopytoolOptions.from_kwargs({"copytools": {"mv": {"copy_type": "symlink"}}}).setting(
        "mv", "copy_type") == "symlink"
    assert CopytoolOptions.from_kwargs({"catchall": "a=1 mv_copy_type=move"}).setting("mv", "copy_type") == "move"
    assert CopytoolOptions().setting("mv", "copy_type", "copy") == "copy"
    assert tool_setting({"catchall": "mv_copy_type='ln'"}, "mv", "copy_type") == "ln"


def test_setup_first_tool_with_one():
    opts = CopytoolOptions.from_kwargs({"copytools": {"gfal": {}, "gfalcopy": {"setup": "/s.sh"}}})
    assert opts.setup("gfal", "gfalcopy") == "/s.sh" and opts.setup("xrdcp") == ""


def test_the_data_api_object_is_returned_as_built():
    opts = CopytoolOptions(workdir="/w")
    assert CopytoolOptions.from_kwargs({OPTIONS_KEY: opts, "workdir": "/ignored"}) is opts
    assert CopytoolOptions.of(opts) is opts


def test_call_kwargs_for_another_tool_carry_both_shapes():
    opts = CopytoolOptions.from_kwargs({"workdir": "/w", "activity": ["pr"], "foo": 1})
    kwargs = opts.call_kwargs(xrootd_env={"XrdSecPROTOCOL": "gsi"})
    assert kwargs["workdir"] == "/w" and kwargs["activity"] == ["pr"] and kwargs["foo"] == 1
    assert "copy_type" not in kwargs and kwargs["xrootd_env"] == {"XrdSecPROTOCOL": "gsi"}
    inner = CopytoolOptions.from_kwargs(kwargs)
    assert inner.xrootd_env == {"XrdSecPROTOCOL": "gsi"} and inner.workdir == "/w"
    assert opts.xrootd_env == {}  # the original is unchanged


def test_data_api_builds_the_options_once_per_tool(tmp_path):
    client = StageInClient(workdir=str(tmp_path))
    kwargs = client.tool_kwargs("mv", ["pr", "default"], {"workdir": str(tmp_path), "copy_type": "symlink"})
    opts = kwargs[OPTIONS_KEY]
    assert isinstance(opts, CopytoolOptions) and opts.workdir == str(tmp_path)
    assert opts.activity == ("pr", "default") and opts.copy_type == "symlink"
    assert kwargs["workdir"] == str(tmp_path)  # the Pilot 2 keywords are still passed


def test_mv_reads_the_typed_options(tmp_path):
    src = tmp_path / "in" / "f1"
    src.parent.mkdir()
    src.write_bytes(b"data")
    work = tmp_path / "work"
    work.mkdir()
    fspec = FileSpec(type="input", lfn="f1", turl=f"file://{src}", workdir=str(work))
    opts = CopytoolOptions.from_kwargs({"workdir": str(work), "copy_type": "symlink"})
    mv.copy_in([fspec], **{OPTIONS_KEY: opts})
    assert fspec.status == "transferred" and (work / "f1").is_symlink()
