"""The dev server records the body sizes of every protocol request, trace reports included (bench accounting)."""

import gzip
import json
import sqlite3
from urllib.parse import urlencode

from pilot.devserver.app import App
from pilot.devserver.info import InfoData
from pilot.devserver.routing import Request
from pilot.devserver.store import Store


def _app(tmp_path, store):
    return App(store, InfoData.create(str(tmp_path / "storage")))


def test_request_and_reply_sizes_are_recorded(tmp_path):
    store = Store(":memory:")
    app = _app(tmp_path, store)
    form = urlencode({"siteName": "DEV_QUEUE", "node": "n1"}).encode()
    outcome = app.handle(Request("POST", "/server/panda/getJob", "", {"Content-Type": "x"}, form))
    (record,) = store.requests("getJob")
    assert record["bytes_in"] == len(form)
    assert record["bytes_out"] == len(outcome.body) > 0
    outcome = app.handle(Request("GET", "/cache/schedconfig/DEV_QUEUE.all.json", "a=1"))
    (record,) = store.requests("schedconfig")
    assert (record["bytes_in"], record["bytes_out"]) == (3, len(outcome.body))


def test_compressed_bodies_count_as_sent_and_traces_are_recorded(tmp_path):
    store = Store(":memory:")
    app = _app(tmp_path, store)
    body = gzip.compress(json.dumps({"jobId": "1", "state": "running"}).encode())
    app.handle(Request("POST", "/server/panda/updateJob", "", {"Content-Type": "application/json"}, body))
    assert store.requests("updateJob")[0]["bytes_in"] == len(body)
    trace = json.dumps({"eventType": "get_sm", "filename": "f"}).encode()
    assert app.handle(Request("POST", "/traces/", "", {"Content-Type": "application/json"}, trace)).status == 201
    (record,) = store.requests("traces")
    assert record["bytes_in"] == len(trace) and record["fields"]["filename"] == "f"
    assert len(store.traces()) == 1


def test_old_database_gains_the_size_columns(tmp_path):
    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE requests (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, method TEXT "
                 "NOT NULL, client TEXT, scheme TEXT, http_status INTEGER, injected TEXT, result TEXT, "
                 "fields TEXT NOT NULL)")
    conn.execute("INSERT INTO requests (time, method, fields) VALUES (1, 'getJob', '{}')")
    conn.commit()
    conn.close()
    store = Store(path)
    store.record_request("updateJob", {}, bytes_in=5, bytes_out=7)
    assert [(r["bytes_in"], r["bytes_out"]) for r in store.requests()] == [(0, 0), (5, 7)]
    store.close()
