"""Unit tests of the dev server command line that need no running server."""

import json

import pytest

from pilot.devserver import cli
from pilot.devserver.store import Store


def _database(path):
    store = Store(str(path))
    pandaid = store.add_job({"jobPars": "x"}, queue="DEV_QUEUE")
    store.record_update(pandaid, "running", {"state": "running"})
    store.record_update(pandaid, "finished", {"state": "finished", "pilotErrorCode": "0",
                                              "xml": json.dumps({"o": {"guid": "G"}}), "pilotTiming": "1|2|3|4|5"})
    store.record_update(pandaid, "finished", {"state": "finished"})
    store.add_ranges(pandaid, [{"eventRangeID": "r1"}])
    store.close()
    return pandaid


def test_show_reads_a_database_offline(tmp_path, capsys):
    pandaid = _database(tmp_path / "dev.db")
    assert cli.main(["show", str(pandaid), "--db", str(tmp_path / "dev.db")]) == 0
    text = capsys.readouterr().out
    assert f"PandaID {pandaid}  state=finished  final=finished" in text
    assert "duplicate finals=1" in text
    assert "pilotErrorCode: 0" in text and '"guid": "G"' in text
    assert "[duplicate final]  -> alreadydone" in text
    assert "r1: ready" in text


def test_show_json(tmp_path, capsys):
    pandaid = _database(tmp_path / "dev.db")
    cli.main(["show", str(pandaid), "--db", str(tmp_path / "dev.db"), "--json"])
    record = json.loads(capsys.readouterr().out)
    assert record["final_update"]["pilotTiming"] == [1, 2, 3, 4, 5]
    assert record["n_updates"] == 3


def test_show_unknown_job_offline(tmp_path):
    _database(tmp_path / "dev.db")
    with pytest.raises(SystemExit):
        cli.main(["show", "1", "--db", str(tmp_path / "dev.db")])


def test_client_commands_without_a_server_fail_clearly(tmp_path):
    with pytest.raises(SystemExit, match="no running dev server"):
        cli.main(["jobs", "--state-dir", str(tmp_path)])


def test_serve_rejects_bad_rules(tmp_path):
    with pytest.raises(SystemExit, match="bad --inject"):
        cli.main(["serve", "--state-dir", str(tmp_path), "--inject", "getJob:explode"])
