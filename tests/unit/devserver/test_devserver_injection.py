"""Unit tests of failure-injection rules (pilot.devserver.injection)."""

import pytest

from pilot.devserver.injection import Injector, Rule, parse_rule_spec, rule_from_dict


def test_rule_after_and_count():
    rule = Rule(method="updateJob", action="status", status=503, count=2, after=1)
    fired = [rule.consider("updateJob") for _ in range(5)]
    assert fired == [False, True, True, False, False]
    assert rule.exhausted and rule.applied == 2 and rule.seen == 3


def test_rule_only_counts_its_method():
    rule = Rule(method="getJob", action="drop", count=1)
    assert not rule.consider("updateJob")
    assert rule.seen == 0
    assert rule.consider("getJob")


def test_wildcard_and_unlimited():
    rule = Rule(method="*", action="malformed")
    assert all(rule.consider(name) for name in ("getJob", "updateJob", "schedconfig", "traces"))
    assert not rule.exhausted


def test_process_defaults():
    assert Rule(action="status").process is False
    assert Rule(action="drop").process is False
    assert Rule(action="malformed").process is True
    assert Rule(action="partial").process is True
    assert Rule(action="drop", process=True).process is True


@pytest.mark.parametrize("data", [{"action": "explode"}, {"action": "delay", "delay": -1}, {"method": ""},
                                  {"action": "status", "bogus": 1}])
def test_invalid_rules_are_rejected(data):
    with pytest.raises((ValueError, TypeError)):
        rule_from_dict(data)


def test_parse_compact_spec():
    assert parse_rule_spec("updateJob:status:status=503,count=2") == {
        "method": "updateJob", "action": "status", "status": 503, "count": 2}
    assert parse_rule_spec("getJob:delay:delay=2.5") == {"method": "getJob", "action": "delay", "delay": 2.5}
    assert parse_rule_spec("*:drop:process=true") == {"method": "*", "action": "drop", "process": True}
    assert parse_rule_spec("*:partial") == {"method": "*", "action": "partial"}


def test_parse_json_spec():
    assert parse_rule_spec('{"method": "getJob", "action": "drop", "count": 1}')["count"] == 1


@pytest.mark.parametrize("spec", ["updateJob", "getJob:nope", "getJob:status:status", "[1]"])
def test_parse_bad_spec(spec):
    with pytest.raises(ValueError):
        parse_rule_spec(spec)


def test_injector_picks_first_firing_rule_in_order():
    injector = Injector()
    first = injector.add({"method": "updateJob", "action": "drop", "count": 1})
    second = injector.add({"method": "*", "action": "status", "status": 500, "count": 1})
    assert (first.id, second.id) == (1, 2)
    assert injector.pick("updateJob") is first
    assert injector.pick("updateJob") is second
    assert injector.pick("updateJob") is None
    listed = injector.rules()
    assert [r["exhausted"] for r in listed] == [True, True]
    injector.clear()
    assert injector.rules() == []
