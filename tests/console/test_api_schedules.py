"""Schedules through the API: Node-registered ones listed, created, paused, resumed, run now and removed."""

from __future__ import annotations

import redis
from console_app import TOKEN
from event_stream import stream_events
from starlette.testclient import TestClient
from wire_data import seed_wire_facts

from zenith_protocol import EventType, KeySpace, decode_job

AUTH = {"Authorization": f"Bearer {TOKEN.split('=', 1)[1]}"}
NOW_MS = 1_767_225_600_000


def test_a_schedule_the_node_system_registered_is_listed_with_its_runs(
    console: TestClient, r: redis.Redis, keyspace: KeySpace
) -> None:
    seed_wire_facts(r, keyspace, NOW_MS)

    [nightly] = console.get("/api/schedules").json()

    assert (nightly["id"], nightly["valid"], nightly["enabled"], nightly["cron"]) == (
        "nightly",
        True,
        True,
        "0 3 * * *",
    )
    assert (nightly["nextRun"], nightly["lastRun"]) == (NOW_MS + 60_000, NOW_MS - 86_400_000)
    assert (nightly["queue"], nightly["jobName"]) == ("emails", "nightly-report")
    assert console.get("/api/schedules/nightly").json() == nightly


def test_create_pause_resume_run_and_remove(console: TestClient, r: redis.Redis, keyspace: KeySpace) -> None:
    body = {"id": "digest", "cron": "0 8 * * 1", "queue": "mail", "jobName": "send-digest", "properties": {"n": 3}}

    created = console.post("/api/schedules", json=body, headers=AUTH)
    assert created.status_code == 200, created.text
    assert created.json()["enabled"] and created.json()["nextRun"] > 0

    assert console.post("/api/schedules/digest/pause", headers=AUTH).json()["enabled"] is False
    [listed] = console.get("/api/schedules").json()
    assert (listed["enabled"], listed["nextRun"]) == (False, None)
    resumed = console.post("/api/schedules/digest/resume", headers=AUTH).json()
    assert resumed["enabled"] and resumed["nextRun"] == r.zscore(keyspace.schedules(), "digest")

    job_id = console.post("/api/schedules/digest/run", headers=AUTH).json()["jobId"]
    [raw] = r.lrange(keyspace.queue("mail"), 0, -1)
    assert (decode_job(raw).id, decode_job(raw).properties) == (job_id, {"n": 3})

    assert console.delete("/api/schedules/digest", headers=AUTH).json()["action"] == "remove"
    assert console.get("/api/schedules").json() == []
    operator = [e for e in stream_events(r, keyspace) if e.type == EventType.OPERATOR]
    actions = ("schedule_register", "schedule_pause", "schedule_resume", "schedule_run", "schedule_remove")
    assert [(getattr(e.action, "value", e.action), e.actor) for e in operator] == [
        (action, "ops") for action in actions
    ]


def test_bad_schedules_and_missing_ones_say_what_is_wrong(console: TestClient) -> None:
    bad = {"id": "x", "cron": "61 * * * *", "queue": "mail", "jobName": "j"}
    refused = console.post("/api/schedules", json=bad, headers=AUTH)
    assert refused.status_code == 400 and "cron" in refused.json()["error"]
    missing = console.post("/api/schedules/nope/run", headers=AUTH)
    assert missing.status_code == 404 and "zenith schedules list" in missing.json()["error"]
    assert console.delete("/api/schedules/nope").status_code == 403  # no token, no cross-site token
