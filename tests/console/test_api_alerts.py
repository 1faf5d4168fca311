"""Alerts through the API: rules with states, silences, mute windows, channels, a test notification, history."""

from __future__ import annotations

import json

import redis
from alert_receivers import http_server
from console_app import TOKEN
from starlette.testclient import TestClient
from wire_data import seed_wire_facts

from zenith_protocol import AlertState, AlertStatus, KeySpace, encode_alert_state
from zenith_protocol.alerts import Transition
from zenith_sdk.alerts.store import state_field

AUTH = {"Authorization": f"Bearer {TOKEN.split('=', 1)[1]}"}
NOW_MS = 1_767_225_600_000
NODE_CONFIG = {
    "channels": {
        "slack": {"enabled": True, "webhookUrl": "https://hooks.slack.com/services/T000/B000/XXXX"},
        "email": {"enabled": True, "smtpHost": "smtp.example.com", "smtpUser": "alerts", "smtpPass": "s3cret"},
    }
}


def test_node_rules_are_listed_with_the_states_of_their_subjects(
    console: TestClient, r: redis.Redis, keyspace: KeySpace
) -> None:
    seed_wire_facts(r, keyspace, NOW_MS)
    firing = AlertState(state=AlertStatus.FIRING, seq=3, since_ms=NOW_MS, value=1200, threshold=1000)
    r.hset(keyspace.alerts_states(), state_field("r2", "queue:emails"), encode_alert_state(firing))

    rules = {view["rule"]["id"]: view for view in console.get("/api/alerts/rules").json()}

    assert set(rules) >= {"r1", "r2"} and rules["r2"]["rule"]["cooldownMinutes"] == 60
    assert rules["r2"]["states"]["queue:emails"]["state"] == "firing"
    assert rules["r1"]["states"] == {}


def test_add_edit_and_remove_a_rule(console: TestClient, r: redis.Redis, keyspace: KeySpace) -> None:
    rule = {"id": "slow", "name": "Slow", "type": "latency", "threshold": 30, "queue": "mail"}

    assert console.post("/api/alerts/rules", json=rule, headers=AUTH).json()["id"] == "slow"
    twice = console.post("/api/alerts/rules", json=rule, headers=AUTH)
    assert twice.status_code == 400 and "exists" in twice.json()["error"]
    edited = console.patch("/api/alerts/rules/slow", json={"threshold": 60, "queue": None}, headers=AUTH).json()
    assert edited["threshold"] == 60 and "queue" not in edited
    stored = json.loads(r.get(keyspace.alert_rules()) or "[]")
    assert [x for x in stored if x["id"] == "slow"] == [{k: v for k, v in edited.items() if k != "protocolVersion"}]

    assert console.delete("/api/alerts/rules/slow", headers=AUTH).json() == {"id": "slow", "removed": True}
    assert "slow" not in {view["rule"]["id"] for view in console.get("/api/alerts/rules").json()}
    assert console.delete("/api/alerts/rules/slow", headers=AUTH).status_code == 404


def test_silences_and_mute_windows(console: TestClient) -> None:
    body = {"matchers": {"queue": "mail*"}, "durationS": 3600, "comment": "deploy"}
    silence = console.post("/api/alerts/silences", json=body, headers=AUTH).json()
    assert (silence["author"], silence["matchers"]) == ("ops", {"queue": "mail*"})
    assert [s["id"] for s in console.get("/api/alerts/silences").json()] == [silence["id"]]

    ended = console.post(f"/api/alerts/silences/{silence['id']}/end", headers=AUTH).json()
    assert ended["endsAt"] <= silence["endsAt"]
    assert console.get("/api/alerts/silences").json() == []
    assert [s["id"] for s in console.get("/api/alerts/silences", params={"all": True}).json()] == [silence["id"]]
    everything = console.post("/api/alerts/silences", json={**body, "matchers": {}}, headers=AUTH)
    assert everything.status_code == 400 and "rule='*'" in everything.json()["error"]

    mute = {"cron": "0 22 * * 5", "durationMinutes": 120, "timezone": "Europe/Berlin", "matchers": {"rule": "*"}}
    window = console.post("/api/alerts/mutes", json=mute, headers=AUTH).json()
    assert [w["id"] for w in console.get("/api/alerts/mutes").json()] == [window["id"]]
    assert console.delete(f"/api/alerts/mutes/{window['id']}", headers=AUTH).json()["removed"]
    assert console.get("/api/alerts/mutes").json() == []
    assert console.post("/api/alerts/mutes", json={**mute, "cron": "0 22 * *"}, headers=AUTH).status_code == 400


def test_channel_secrets_are_redacted_and_revealed_only_to_a_token(
    console: TestClient, r: redis.Redis, keyspace: KeySpace
) -> None:
    r.set(keyspace.alert_config(), json.dumps(NODE_CONFIG))

    shown = console.get("/api/alerts/channels").json()["config"]["channels"]
    assert shown["slack"]["webhookUrl"] == "https://hooks.slack.com/***" and shown["email"]["smtpPass"] == "***"
    refused = console.get("/api/alerts/channels", params={"reveal": True})
    assert refused.status_code == 403 and "API token" in refused.json()["error"]
    revealed = console.get("/api/alerts/channels", params={"reveal": True}, headers=AUTH).json()["config"]["channels"]
    assert revealed["slack"]["webhookUrl"].endswith("/XXXX") and revealed["email"]["smtpPass"] == "s3cret"


def test_a_test_notification_reaches_the_webhook_and_history_lists_changes(
    console: TestClient, r: redis.Redis, keyspace: KeySpace
) -> None:
    with http_server() as server:
        server.expect_request("/hook", method="POST").respond_with_data("ok")
        config = {"channels": {"webhooks": [{"name": "ops", "url": server.url_for("/hook"), "enabled": False}]}}
        r.set(keyspace.alert_config(), json.dumps(config))

        delivery = console.post("/api/alerts/channels/webhook:ops/test", headers=AUTH).json()

        assert (delivery["channel"], delivery["ok"], delivery["attempts"]) == ("webhook:ops", True, 1)
        assert len(server.log) == 1
    unknown = console.post("/api/alerts/channels/pager/test", headers=AUTH)
    assert unknown.status_code == 404 and "webhook:ops" in unknown.json()["error"]

    change = Transition(
        rule_id="r2", subject="queue:emails", from_state=AlertStatus.PENDING, to_state=AlertStatus.FIRING, seq=2,
        at_ms=NOW_MS, value=1200, threshold=1000,
    )  # fmt: skip
    r.lpush(keyspace.alerts_history(), change.model_dump_json(by_alias=True, exclude_none=True))
    [listed] = console.get("/api/alerts/history").json()
    assert (listed["ruleId"], listed["fromState"], listed["toState"], listed["at"]) == (
        "r2",
        "pending",
        "firing",
        NOW_MS,
    )


def test_pages_show_values_and_thresholds_in_the_unit_of_their_rule(
    console: TestClient, r: redis.Redis, keyspace: KeySpace
) -> None:
    rules = [
        {"id": "ratio", "name": "CRM failing", "type": "failure_ratio", "threshold": 20, "queue": "crm"},
        {"id": "wait", "name": "Mail waits", "type": "latency", "threshold": 90.0, "queue": "mail"},
    ]
    for rule in rules:
        assert console.post("/api/alerts/rules", json=rule, headers=AUTH).status_code == 200
    for rule_id, subject, value, threshold in (
        ("ratio", "queue:crm", 47.619047619, 20.0),
        ("wait", "queue:mail", 125.0, 90.0),
    ):
        state = AlertState(state=AlertStatus.FIRING, seq=1, since_ms=NOW_MS, value=value, threshold=threshold)
        r.hset(keyspace.alerts_states(), state_field(rule_id, subject), encode_alert_state(state))

    overview = console.get("/").text
    alerts = console.get("/alerts").text

    assert "(47.62% against 20%)" in overview and "(125s against 90s)" in overview
    assert "<td>20%</td>" in alerts and "<td>90s</td>" in alerts
    assert "47.619047619" not in overview + alerts and "90.0" not in alerts
