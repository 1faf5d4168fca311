"""The archive through the API: search, jobs, count and a job's timeline; a 404 that says what to do without one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from console_app import TOKEN
from fastapi import FastAPI
from starlette.testclient import TestClient

from zenith_archive import Archiver, connect, migrate
from zenith_protocol import KeySpace
from zenith_sdk.events import EventEmitter

AUTH = {"Authorization": f"Bearer {TOKEN.split('=', 1)[1]}"}


def test_without_an_archive_every_endpoint_says_how_to_get_one(
    make_app: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # the zero-config file would be under it
    with TestClient(make_app()) as client:
        for path in (
            "/api/archive/search?q=x",
            "/api/archive/jobs",
            "/api/archive/count?q=x",
            "/api/archive/jobs/1/timeline",
        ):
            reply = client.get(path)
            assert reply.status_code == 404 and "ZENITH_ARCHIVE_URL" in reply.json()["error"], path
    assert list(tmp_path.iterdir()) == []  # a read creates nothing


def test_the_zero_config_file_is_used_once_it_exists(
    make_app: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with TestClient(make_app()) as client:
        assert client.get("/api/archive/jobs").status_code == 404
        engine = connect()  # `zenith archive migrate` with no URL
        migrate(engine)
        engine.dispose()
        assert client.get("/api/archive/jobs").json() == {"jobs": [], "next": None}


def test_search_jobs_count_and_timeline_of_archived_events(
    make_app: Callable[..., FastAPI], r: redis.Redis, keyspace: KeySpace, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    engine = connect(url)
    migrate(engine)
    events = EventEmitter(r, keyspace=keyspace)
    for index in range(3):
        events.enqueued("emails", f"j{index}", job_name="send-welcome")
        events.started("emails", f"j{index}", worker_id="w1", attempt=1)
    events.failed("emails", "j1", error="SMTP timeout", worker_id="w1", attempt=1)
    events.dead_lettered("emails", "j1", error="SMTP timeout", attempt=1)
    events.completed("emails", "j2", duration_ms=12.5, worker_id="w1")
    archiver = Archiver(r, engine, keyspace=keyspace)
    while archiver.run_once().events:
        pass
    engine.dispose()

    with TestClient(make_app(archive_url=url)) as client:
        found = client.get("/api/archive/search", params={"q": "smtp"}).json()
        assert [job["jobId"] for job in found["jobs"]] == ["j1"] and found["total"] == {"n": 1, "capped": False}
        assert found["jobs"][0]["state"] == "dead" and found["jobs"][0]["error"] == "SMTP timeout"
        assert client.get("/api/archive/count", params={"q": "queue:emails"}).json() == {"n": 3, "capped": False}
        first = client.get("/api/archive/jobs", params={"queue": "emails", "limit": 2}).json()
        rest = client.get("/api/archive/jobs", params={"queue": "emails", "after": first["next"]}).json()
        assert len(first["jobs"]) == 2 and len(rest["jobs"]) == 1 and rest["next"] is None
        timeline = client.get("/api/archive/jobs/j1/timeline").json()
        assert [event["type"] for event in timeline["events"]] == ["enqueued", "started", "failed", "dead_lettered"]
        assert client.get("/api/archive/jobs/nope/timeline").status_code == 404
        assert client.get("/api/archive/jobs", params={"state": "sleeping"}).status_code == 400
        assert client.get("/api/archive/jobs", params={"since": "yesterday-ish"}).status_code == 400


def test_a_database_that_does_not_answer_is_a_503(make_app: Callable[..., FastAPI]) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/none"
    with TestClient(make_app(archive_url=url)) as client:
        reply = client.get("/api/archive/jobs")
    assert reply.status_code == 503 and "does not answer" in reply.json()["error"]
