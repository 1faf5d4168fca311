"""Bulk operations over every matching job run as tasks whose progress any console replica reads."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from console_app import TOKEN
from fastapi import FastAPI
from patience import HANG_S
from starlette.testclient import TestClient
from wire_data import dead_letter_job, node_job

from zenith_protocol import KeySpace
from zenith_protocol.keys import CONSOLE_TASK_TTL_S

AUTH = {"Authorization": f"Bearer {TOKEN.split('=', 1)[1]}"}


def _finished(client: TestClient, task_id: str) -> dict[str, object]:
    for _ in range(int(HANG_S / 0.05)):
        task: dict[str, object] = client.get(f"/api/tasks/{task_id}").json()
        if task["state"] != "running":
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} still running after {HANG_S} s")


def test_retry_all_matching_runs_as_a_task_another_replica_reports(
    make_app: Callable[..., FastAPI], r: redis.Redis, keyspace: KeySpace
) -> None:
    for index in range(20):
        r.lpush(keyspace.failed("emails"), dead_letter_job(f"{index}-x", failed_at=1_700_000_000_000 + index))
        if index % 2:
            bounced = node_job(f"{index}-y", "send", {"to": "a@example.com"}, created_at=1, error="bounced")
            r.lpush(keyspace.failed("emails"), bounced)

    with TestClient(make_app()) as one, TestClient(make_app()) as other:
        body = {"state": "failed", "action": "retry", "query": "bounced"}
        started = one.post("/api/queues/emails/tasks", json=body, headers=AUTH)
        assert started.status_code == 202, started.text
        assert (started.json()["state"], started.json()["total"]) == ("running", 30)

        task = _finished(other, started.json()["id"])

    assert (task["state"], task["matched"], task["moved"], task["lookedAt"]) == ("done", 10, 10, 30)
    assert r.llen(keyspace.failed("emails")) == 20 and r.llen(keyspace.queue("emails")) == 10
    assert 0 < r.ttl(keyspace.console_task(str(task["id"]))) <= CONSOLE_TASK_TTL_S


def test_a_task_that_cannot_run_fails_with_the_reason(console: TestClient, r: redis.Redis, keyspace: KeySpace) -> None:
    r.lpush(keyspace.queue("emails"), node_job("w-1", "send", {}, created_at=1))

    started = console.post("/api/queues/emails/tasks", json={"state": "waiting", "action": "retry"}, headers=AUTH)
    task = _finished(console, started.json()["id"])

    assert task["state"] == "failed" and "cannot be retried" in str(task["error"])
    assert (
        console.post("/api/queues/nope/tasks", json={"state": "failed", "action": "retry"}, headers=AUTH).status_code
        == 404
    )
    bad = console.post(
        "/api/queues/emails/tasks", json={"state": "failed", "action": "retry", "query": '"x'}, headers=AUTH
    )
    assert bad.status_code == 400
    assert console.get("/api/tasks/nope").status_code == 404
