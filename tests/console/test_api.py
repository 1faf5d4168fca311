"""The JSON API on a real Redis holding what Node and Python writers wrote."""

from __future__ import annotations

import pytest
import redis
from console_app import TOKEN, settings_for
from event_stream import stream_events
from starlette.testclient import TestClient
from wire_data import dead_letter_job, node_job

from zenith_protocol import EventType, KeySpace
from zenith_sdk.console import ConsoleSettings, create_app
from zenith_sdk.producer import Producer

AUTH = {"Authorization": f"Bearer {TOKEN.split('=', 1)[1]}"}


def test_queues_and_jobs_written_by_node_and_python(console: TestClient, r: redis.Redis, keyspace: KeySpace) -> None:
    r.lpush(keyspace.queue("emails"), node_job("1-a", "send", {"to": "ada@example.com"}, created_at=1))
    r.lpush(keyspace.failed("emails"), dead_letter_job("2-b", failed_at=1_700_000_000_000))
    Producer(r, keyspace=keyspace).push("welcome", {"to": "bob@example.com"}, queue="emails")

    queues = console.get("/api/queues").json()
    assert [(q["name"], q["waiting"], q["failed"]) for q in queues] == [("emails", 2, 1)]
    waiting = console.get("/api/queues/emails/jobs").json()
    assert {job["name"] for job in waiting} == {"send", "welcome"}
    failed = console.get("/api/queues/emails/jobs", params={"state": "failed"}).json()
    assert [job["id"] for job in failed] == ["2-b"]
    assert console.get("/api/queues/emails/jobs/1-a").json()["properties"] == {"to": "ada@example.com"}


def test_a_retry_through_the_api_moves_the_job_and_records_the_actor(
    console: TestClient, r: redis.Redis, keyspace: KeySpace
) -> None:
    r.lpush(keyspace.failed("emails"), dead_letter_job("2-b", failed_at=1_700_000_000_000))

    done = console.post("/api/queues/emails/jobs/2-b/retry", headers=AUTH)

    assert done.status_code == 200, done.text
    assert done.json() == {"action": "retry", "queue": "emails", "count": 1, "state": "failed"}
    assert r.llen(keyspace.failed("emails")) == 0 and r.llen(keyspace.lane("emails", "high")) == 1  # its priority
    operator = [event for event in stream_events(r, keyspace) if event.type == EventType.RETRIED]
    assert [(event.job_id, event.actor) for event in operator] == [("2-b", "ops")]


def test_bulk_dry_run_counts_and_moves_nothing(console: TestClient, r: redis.Redis, keyspace: KeySpace) -> None:
    for index in range(5):
        r.lpush(keyspace.failed("emails"), dead_letter_job(f"{index}-x", failed_at=1_700_000_000_000 + index))

    outcome = console.post(
        "/api/queues/emails/bulk", json={"state": "failed", "action": "retry", "dryRun": True}, headers=AUTH
    ).json()

    assert (outcome["matched"], outcome["moved"], outcome["dryRun"]) == (5, 0, True)
    assert r.llen(keyspace.failed("emails")) == 5


def test_errors_are_one_line_with_the_right_status(console: TestClient, keyspace: KeySpace) -> None:
    missing = console.get("/api/queues/nope/jobs/1")
    assert missing.status_code == 404 and "not found" in missing.json()["error"]
    bad = console.get("/api/search", params={"q": 'name:"unclosed'})
    assert bad.status_code == 400 and bad.json()["error"]
    refused = console.post("/api/queues/nope/purge", json={"confirm": "nope"})
    assert refused.status_code == 403 and "cross-site" in refused.json()["error"]


def test_an_unreachable_redis_is_a_503_that_says_so(keyspace: KeySpace) -> None:
    app = create_app(settings_for(keyspace, "redis://127.0.0.1:1/0"))
    with TestClient(app) as client:
        reply = client.get("/api/queues")
    assert reply.status_code == 503
    assert "127.0.0.1:1" in reply.json()["error"] and "ZENITH_REDIS_URL" in reply.json()["error"]


def test_the_overview_speaks_camel_case_like_the_rest_of_the_api(
    console: TestClient, r: redis.Redis, keyspace: KeySpace
) -> None:
    r.lpush(keyspace.failed("emails"), dead_letter_job("2-b", failed_at=1_700_000_000_000))

    overview = console.get("/api/overview").json()

    assert {"takenMs", "totals", "queues", "workers", "workersStale", "nodes", "nodesStale", "firing"} <= set(overview)
    assert overview["totals"] == {
        "queues": 1, "paused": 0, "waiting": 0, "delayed": 0, "active": 0, "grouped": 0, "failed": 1,
    }  # fmt: skip


def test_queue_counts_resume_purge_and_clearing_dead_letters(
    console: TestClient, r: redis.Redis, keyspace: KeySpace
) -> None:
    r.lpush(keyspace.queue("emails"), node_job("1-a", "send", {}, created_at=1_700_000_000_000))
    r.lpush(keyspace.failed("emails"), dead_letter_job("2-b", failed_at=1_700_000_000_000))
    r.set(keyspace.paused("emails"), "1")

    assert console.get("/api/queues/emails").json()["paused"] is True
    assert console.post("/api/queues/emails/resume", headers=AUTH).json()["action"] == "resume"
    assert r.get(keyspace.paused("emails")) is None
    cleared = console.post("/api/queues/emails/clear-failed", headers=AUTH).json()
    assert (cleared["count"], r.llen(keyspace.failed("emails"))) == (1, 0)
    refused = console.post("/api/queues/emails/purge", json={"confirm": "email"}, headers=AUTH)
    assert refused.status_code == 400 and "emails" in refused.json()["error"]
    assert r.llen(keyspace.queue("emails")) == 1
    purged = console.post("/api/queues/emails/purge", json={"confirm": "emails"}, headers=AUTH).json()
    assert purged["count"] >= 1 and r.llen(keyspace.queue("emails")) == 0


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("api_tokens", ["ops=short"], "at least 16 characters"),
        ("api_tokens", ["no-name-token-0123456789"], "name=secret"),
        ("trusted_origins", ["console.example.com"], "scheme://host"),
        ("trusted_origins", ["https://console.example.com/admin"], "scheme://host"),
    ],
)
def test_settings_refuse_tokens_and_origins_that_cannot_work(field: str, value: list[str], expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        ConsoleSettings(**{field: value})  # type: ignore[arg-type]
