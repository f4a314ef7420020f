"""Integration tests of starting and stopping dev servers (subprocess and in-process)."""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pilot.devserver.control import DevServer, DevServerError, InProcessDevServer
from pilot.devserver.info import default_queuedata

REPO = Path(__file__).resolve().parents[3]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def post_form(url, data):
    req = urllib.request.Request(url, data=data.encode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_stop_is_clean_and_removes_the_state_file(tmp_path):
    srv = DevServer(tmp_path, https=False).start()
    state_file = tmp_path / "devserver.json"
    assert state_file.exists() and srv.https_url is None and srv.cacert is None
    pid = srv.pid
    assert srv.stop() == 0
    assert not state_file.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "dev server stopped" in (tmp_path / "devserver.log").read_text()
    assert srv.stop() is None


def test_sigint_stops_the_foreground_server(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "pilot.devserver", "serve", "--state-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("DEVSERVER READY ")
        info = json.loads(line.split(" ", 2)[2])
        assert get_json(info["http_url"] + "/admin/status")["pid"] == proc.pid
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert not (tmp_path / "devserver.json").exists()


def test_serve_time_rules_files_and_options(tmp_path):
    queues = tmp_path / "queues.json"
    queues.write_text(json.dumps(default_queuedata("SITE_Q")))
    storages = tmp_path / "storages.json"
    storages.write_text(json.dumps({"DISK_X": {"name": "DISK_X", "type": "DISK", "is_deterministic": True,
                                               "arprotocols": {"write_lan": [{"endpoint": "file://",
                                                                              "path": "@STORAGE_DIR@"}]}}}))
    rule = {"method": "getJob", "action": "status", "status": 500, "count": 1}
    storage = tmp_path / "store"
    with DevServer(tmp_path / "state", https=False, queuedata=str(queues), storagedata=str(storages),
                   storage_dir=str(storage), inject=[rule]) as srv:
        assert srv.storage_dir == str(storage.resolve()) and storage.is_dir()
        assert get_json(srv.url + "/queuedata/SITE_Q.json")["nickname"] == "SITE_Q"
        disk = get_json(srv.url + "/storagedata.json")["DISK_X"]
        assert disk["arprotocols"]["write_lan"][0]["path"] == str(storage.resolve())
        with pytest.raises(urllib.error.HTTPError) as err:
            post_form(srv.url + "/server/panda/getJob", "siteName=SITE_Q")
        assert err.value.code == 500
        assert post_form(srv.url + "/server/panda/getJob", "siteName=SITE_Q")["StatusCode"] == 20


def test_queue_option_renames_the_default_queue(tmp_path):
    with DevServer(tmp_path, https=False, queue="MY_QUEUE") as srv:
        assert srv.info["queue"] == "MY_QUEUE"
        data = get_json(srv.url + "/cache/schedconfig/MY_QUEUE.all.json")
        assert data["nickname"] == data["panda_resource"] == "MY_QUEUE"


def test_startup_failure_is_reported(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        srv = DevServer(tmp_path, https=False, port=port, startup_timeout=20)
        with pytest.raises(DevServerError, match="exited"):
            srv.start()
        assert srv.proc is None


def test_in_process_server_with_https(tmp_path):
    import ssl
    with InProcessDevServer(tmp_path, https=True) as srv:
        pandaid = srv.submit({"jobPars": "x"})
        ctx = ssl.create_default_context(cafile=srv.cacert)
        req = urllib.request.Request(srv.https_url + "/server/panda/getJob", data=b"siteName=ANY")
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            assert json.loads(resp.read())["PandaID"] == str(pandaid)
        assert srv.app.store.get_job(pandaid)["state"] == "sent"
        with pytest.raises(TimeoutError):
            srv.wait_final(pandaid, timeout=0.1)
    assert not (tmp_path / "devserver.json").exists()
