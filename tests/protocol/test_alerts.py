"""Alert models: rules the Node console wrote stay byte for byte, v2 fields and structures round-trip, secrets
stay out of reprs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zenith_protocol import (
    DEFAULT_ALERT_RULES,
    AlertConfig,
    AlertRule,
    AlertType,
    EmailChannel,
    EmailSecurity,
    Severity,
    decode_alert_config,
    decode_alert_rules,
    encode_alert_config,
    encode_alert_rules,
    notification_id,
)

NODE_TYPES = ["backlog", "failure", "worker_lost", "node_cpu", "node_ram"]

NODE_RULES = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=12),
        "name": st.text(max_size=20),
        "type": st.sampled_from(NODE_TYPES),
        "threshold": st.integers(0, 10_000) | st.sampled_from([0.5, 85.5, 99.9]),
    },
    optional={
        "queue": st.text(min_size=1, max_size=12),
        "cooldownMinutes": st.integers(0, 1440),
    },
)
"""Rules as the Node console saves them: its five types, its six fields, nothing else."""


def node_text(rules: list[dict[str, Any]]) -> str:
    """The rules array as the Node console writes it (JSON.stringify, cooldownMinutes always present)."""
    ordered = [
        {
            **{key: rule[key] for key in ("id", "name", "type", "threshold", "queue") if key in rule},
            "cooldownMinutes": rule.get("cooldownMinutes", 30),
        }
        for rule in rules
    ]
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)


@given(rules=st.lists(NODE_RULES, max_size=5))
def test_node_rule_arrays_encode_back_byte_for_byte(rules: list[dict[str, Any]]) -> None:
    raw = node_text(rules)

    decoded = decode_alert_rules(raw)

    assert encode_alert_rules(decoded) == raw
    assert all(rule.enabled and rule.severity is Severity.WARNING and rule.for_s == 0 for rule in decoded)


def test_default_rules_are_unchanged() -> None:
    assert encode_alert_rules(DEFAULT_ALERT_RULES) == (
        '[{"id":"high_failure","name":"High failure count","type":"failure","threshold":50,"cooldownMinutes":30},'
        '{"id":"high_backlog","name":"Queue backlog","type":"backlog","threshold":1000,"cooldownMinutes":60},'
        '{"id":"no_workers","name":"No workers online","type":"worker_lost","threshold":1,"cooldownMinutes":15}]'
    )


def test_v2_rule_fields_are_written_only_when_they_differ_from_their_defaults() -> None:
    rule = AlertRule(
        id="slow",
        name="Slow",
        type=AlertType.LATENCY,
        threshold=300,
        queue="emails-*",
        severity=Severity.CRITICAL,
        for_s=60,
        keep_firing_for_s=0,
        repeat_minutes=120,
        window_minutes=5,
        channels=["slack"],
        enabled=True,
    )

    assert json.loads(encode_alert_rules([rule]))[0] == {
        "id": "slow",
        "name": "Slow",
        "type": "latency",
        "threshold": 300,
        "queue": "emails-*",
        "cooldownMinutes": 30,
        "severity": "critical",
        "forSeconds": 60,
        "repeatMinutes": 120,
        "channels": ["slack"],
    }
    assert decode_alert_rules(encode_alert_rules([rule])) == (rule,)


@pytest.mark.parametrize(
    ("fields", "interval_ms"),
    [
        ({"cooldownMinutes": 30}, 30 * 60_000),
        ({"cooldownMinutes": 30, "repeatMinutes": 2.5}, 150_000),
        ({"cooldownMinutes": 0}, None),
    ],
)
def test_the_repeat_interval_falls_back_to_the_cooldown(fields: dict[str, Any], interval_ms: int | None) -> None:
    rule = AlertRule.model_validate({"id": "r", "name": "r", "type": "backlog", "threshold": 1, **fields})

    assert rule.repeat_interval_ms == interval_ms


def test_every_v2_type_is_known_and_unknown_ones_stay_text() -> None:
    new = ["latency", "failure_count", "failure_ratio", "stuck_job", "node_down", "schedule_missed"]
    new += ["channel_failing", "archive_lag"]
    raw = json.dumps([{"id": t, "name": t, "type": t, "threshold": 1} for t in [*new, "token_expiring"]])

    types = [rule.type for rule in decode_alert_rules(raw)]

    assert types[:-1] == [AlertType(t) for t in new]
    assert types[-1] == "token_expiring" and not isinstance(types[-1], AlertType)


def test_node_channel_settings_encode_back_unchanged() -> None:
    raw = (
        '{"channels":{"slack":{"enabled":true,"webhookUrl":"https://hooks.slack.com/services/T/B/X"},'
        '"email":{"enabled":true,"smtpHost":"smtp.example.com","smtpPort":587,"smtpUser":"u","smtpPass":"p",'
        '"from":"z@example.com","to":"ops@example.com"}}}'
    )

    assert encode_alert_config(decode_alert_config(raw)) == raw


def test_webhook_secrets_and_urls_are_written_but_never_shown() -> None:
    raw = (
        '{"channels":{"slack":{"enabled":true,"webhookUrl":"https://hooks.slack.com/services/T0/B0/TOKEN"},'
        '"webhooks":[{"name":"pager","url":"https://hooks.example.com/in/TOKEN",'
        '"secret":"whsec_c2VjcmV0LWtleS1ieXRlcw=="}]},"protocolVersion":2}'
    )

    config = decode_alert_config(raw)

    endpoint = config.channels.webhooks[0]
    assert endpoint.secret is not None and endpoint.secret.get_secret_value() == "whsec_c2VjcmV0LWtleS1ieXRlcw=="
    for shown in (repr(config), str(config), repr(endpoint)):
        assert "whsec_" not in shown and "TOKEN" not in shown  # webhook URLs are credentials too
    assert '"secret":"whsec_c2VjcmV0LWtleS1ieXRlcw=="' in encode_alert_config(config)
    assert (endpoint.enabled, endpoint.timeout_s, endpoint.retries) == (True, 5, 2)


@pytest.mark.parametrize(
    ("fields", "security"),
    [
        ({"smtpPort": 587}, EmailSecurity.AUTO),
        ({"smtpPort": 465}, EmailSecurity.SSL),
        ({"smtpPort": 25}, EmailSecurity.AUTO),
        ({}, EmailSecurity.AUTO),
        ({"smtpPort": 25, "security": "starttls"}, EmailSecurity.STARTTLS),
        ({"smtpPort": 465, "security": "none"}, EmailSecurity.NONE),
    ],
)
def test_email_security_defaults_by_port(fields: dict[str, Any], security: EmailSecurity) -> None:
    assert EmailChannel.model_validate(fields).effective_security is security


def test_config_templates_and_channel_options_round_trip() -> None:
    config = AlertConfig.model_validate(
        {
            "channels": {
                "discord": {"enabled": True, "webhookUrl": "https://d/x", "retries": 0, "templates": {"body": "b"}},
                "email": {"enabled": True, "security": "ssl", "timeoutSeconds": 12.5},
            },
            "templates": {"title": "{{ rule_name }}"},
        }
    )

    assert decode_alert_config(encode_alert_config(config)) == config
    assert config.channels.discord is not None and config.channels.discord.timeout_s == 5


def test_notification_ids_join_rule_subject_and_seq() -> None:
    assert notification_id("high_backlog", "queue:emails", 7) == "high_backlog:queue:emails:7"
