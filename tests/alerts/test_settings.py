"""Alert rules and channel settings at their legacy keys: defaults, compare-and-set edits, redaction."""

from __future__ import annotations

import json
import threading

import pytest
import redis

from zenith_protocol import DEFAULT_ALERT_RULES, AlertRule, ConflictError, KeySpace, NotFoundError
from zenith_sdk.alerts._settings import (
    add_rule,
    edit_rules,
    load_config,
    load_rules,
    remove_rule,
    save_config,
    update_rule,
)

NODE_RULES = (
    '[{"id":"high_failure","name":"High failure count","type":"failure","threshold":50,"cooldownMinutes":30},'
    '{"id":"cpu","name":"CPU","type":"node_cpu","threshold":90,"cooldownMinutes":5,"custom":"kept"}]'
)
NODE_CONFIG = (
    '{"channels":{"slack":{"enabled":true,"webhookUrl":"https://hooks.slack.com/services/T000/B000/XXXX"},'
    '"email":{"enabled":true,"smtpHost":"smtp.example.com","smtpPort":"587","smtpUser":"alerts",'
    '"smtpPass":"s3cret","from":"zenith@example.com","to":["ops@example.com","oncall@example.com"]}}}'
)


def _rule(rule_id: str, threshold: float = 10) -> AlertRule:
    return AlertRule(id=rule_id, name=rule_id, type="backlog", threshold=threshold)


def test_absent_rules_are_the_defaults_and_the_first_edit_writes_them(r: redis.Redis, keyspace: KeySpace) -> None:
    assert load_rules(r, keyspace=keyspace) == list(DEFAULT_ALERT_RULES)

    add_rule(r, _rule("mine"), keyspace=keyspace)

    stored = json.loads(r.get(keyspace.alert_rules()) or b"")
    assert [rule["id"] for rule in stored] == ["high_failure", "high_backlog", "no_workers", "mine"]
    assert stored[0] == {
        "id": "high_failure",
        "name": "High failure count",
        "type": "failure",
        "threshold": 50,
        "cooldownMinutes": 30,
    }


def test_an_empty_array_means_no_rules(r: redis.Redis, keyspace: KeySpace) -> None:
    r.set(keyspace.alert_rules(), "[]")

    assert load_rules(r, keyspace=keyspace) == []


def test_node_rules_load_and_unknown_fields_survive_an_edit(r: redis.Redis, keyspace: KeySpace) -> None:
    r.set(keyspace.alert_rules(), NODE_RULES)

    updated = update_rule(r, "cpu", {"threshold": 95}, keyspace=keyspace)

    assert updated.threshold == 95
    stored = json.loads(r.get(keyspace.alert_rules()) or b"")
    assert stored[1] == {
        "id": "cpu",
        "name": "CPU",
        "type": "node_cpu",
        "threshold": 95,
        "cooldownMinutes": 5,
        "custom": "kept",
    }
    remove_rule(r, "high_failure", keyspace=keyspace)
    assert [rule.id for rule in load_rules(r, keyspace=keyspace)] == ["cpu"]


def test_missing_and_duplicate_rules_are_refused(r: redis.Redis, keyspace: KeySpace) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        remove_rule(r, "nope", keyspace=keyspace)
    with pytest.raises(ValueError, match="exists"):
        add_rule(r, _rule("high_backlog"), keyspace=keyspace)
    assert r.get(keyspace.alert_rules()) is None


def test_concurrent_edits_lose_nothing(r: redis.Redis, keyspace: KeySpace) -> None:
    def add(index: int) -> None:
        client = redis.Redis(connection_pool=r.connection_pool)
        for attempt in range(20):
            try:
                add_rule(client, _rule(f"r{index}"), keyspace=keyspace)
                return
            except ConflictError:
                continue
        raise AssertionError(f"rule r{index} never got in")

    threads = [threading.Thread(target=add, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {rule.id for rule in load_rules(r, keyspace=keyspace)} >= {f"r{index}" for index in range(8)}


def test_an_edit_that_always_loses_gives_up(r: redis.Redis, keyspace: KeySpace) -> None:
    calls = []

    def change(rules: list[AlertRule]) -> list[AlertRule]:
        calls.append(1)  # another writer gets in between every read and write
        r.set(keyspace.alert_rules(), json.dumps([_rule(f"other-{len(calls)}").model_dump(by_alias=True)]))
        return rules

    with pytest.raises(ConflictError, match="alert rules"):
        edit_rules(r, change, keyspace=keyspace, attempts=3)
    assert len(calls) == 3


def test_node_config_loads_redacted_and_a_redacted_save_keeps_the_secrets(r: redis.Redis, keyspace: KeySpace) -> None:
    r.set(keyspace.alert_config(), NODE_CONFIG)

    shown = load_config(r, keyspace=keyspace)
    assert shown.channels.slack is not None and shown.channels.slack.webhook_url == "https://hooks.slack.com/***"
    assert shown.channels.email is not None and shown.channels.email.to == "ops@example.com, oncall@example.com"
    assert "s3cret" not in shown.model_dump_json() and "XXXX" not in shown.model_dump_json()

    email = shown.channels.email.model_copy(update={"smtp_host": "smtp2.example.com"})
    save_config(
        r, shown.model_copy(update={"channels": shown.channels.model_copy(update={"email": email})}), keyspace=keyspace
    )

    revealed = load_config(r, keyspace=keyspace, reveal=True)
    assert revealed.channels.slack is not None
    assert revealed.channels.slack.webhook_url == "https://hooks.slack.com/services/T000/B000/XXXX"
    assert revealed.channels.email is not None and revealed.channels.email.smtp_host == "smtp2.example.com"
    assert revealed.channels.email.smtp_pass is not None
    assert revealed.channels.email.smtp_pass.get_secret_value() == "s3cret"
