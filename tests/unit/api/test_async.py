"""transfer_async: a handle per request with status, progress, cancel, wait and result."""

import time

import pytest
from apitools import ALIASES, FAST, adler

from pilot.api.data import StageInClient
from pilot.common.errorcodes import ErrorCodes as E
from pilot.common.exception import PilotException
from pilot.info import FileSpec


def files(site, n):
    out = []
    for i in range(n):
        data = f"file {i}".encode()
        site.put("DISK", "tests", f"a{i}.dat", data)
        out.append(FileSpec(type="input", scope="tests", lfn=f"a{i}.dat", ddmendpoint="DISK", filesize=len(data),
                            checksum={"adler32": adler(data)}, workdir=str(site.work)))
    return out


def client(site, **kw):
    return StageInClient(site.info, acopytools="fake", copytool_aliases=ALIASES, retry_policy=FAST, **kw)


def test_async_success(site, fake_tools):
    fake_tools["fake"].delay = 0.05
    todo = files(site, 6)
    handle = client(site).transfer_async(todo)
    assert handle.status in ("pending", "running")
    assert handle.wait(10) and handle.status == "done" and handle.done()
    assert handle.result() == todo and handle.progress() == (6, 6) and handle.exception() is None
    assert not handle.cancel()


def test_async_failure_is_reraised(site, fake_tools):
    fake_tools["fake"].script["a0.dat"] = ["No such file or directory"]
    handle = client(site).transfer_async(files(site, 2))
    handle.wait(10)
    assert handle.status == "failed"
    with pytest.raises(PilotException) as err:
        handle.result()
    assert err.value.get_error_code() == E.MISSINGINPUTFILE and handle.progress() == (1, 2)


def test_cancel_stops_new_transfers(site, fake_tools):
    fake_tools["fake"].delay = 0.3
    todo = files(site, 10)
    handle = client(site, max_workers=2).transfer_async(todo)
    time.sleep(0.1)
    assert handle.cancel()
    start = time.monotonic()
    assert handle.wait(10)
    assert time.monotonic() - start < 1.5  # 10 files x 0.3 s over 2 workers would take 1.5 s more
    assert handle.status == "cancelled"
    assert isinstance(handle.exception(), PilotException)
    done, total = handle.progress()
    assert 1 <= done < total
    assert any(f.transfer_error == "cancelled" for f in todo)
    assert len(fake_tools["fake"].calls) < 10


def test_result_timeout_while_running(site, fake_tools):
    fake_tools["fake"].delay = 0.5
    handle = client(site).transfer_async(files(site, 1))
    with pytest.raises(TimeoutError):
        handle.result(timeout=0.01)
    handle.wait()
    assert "done" in repr(handle)
