"""The archiver turns every event type of PROTOCOL 8.4 into the right job and timeline rows."""

from __future__ import annotations

import json

import redis
from sqlalchemy import select
from sqlalchemy.engine import Engine

from archive.helpers import archive, archived_ids, emit, job, rows, stream_ids
from zenith_archive.archiver import Archiver
from zenith_archive.query import timeline
from zenith_archive.schema import job_events, job_fields, jobs, legacy_job_archive, operator_actions
from zenith_protocol import EventType, JobEvent, JobPayload, KeySpace
from zenith_sdk.events import job_event

T0 = 1_767_225_600_000


def _payload(job_id: str, **properties: object) -> JobPayload:
    return JobPayload.create("SendWelcomeEmail", properties, job_id=job_id, created_at_ms=T0)


def _lifecycle(job_id: str, *, outcome: EventType) -> list[JobEvent]:
    payload = _payload(job_id, email="Ann@Example.com", user={"id": 42, "vip": True}, password="hunter2")
    events = [
        job_event(EventType.ENQUEUED, "emails", payload, include_payload=True, timestamp_ms=T0),
        job_event(EventType.STARTED, "emails", payload, worker_id="w1", attempt=1, timestamp_ms=T0 + 10),
        job_event(
            EventType.FAILED, "emails", payload, worker_id="w1", attempt=1, error="SMTP timeout", timestamp_ms=T0 + 20
        ),
        job_event(EventType.RETRIED, "emails", payload, worker_id="w1", attempt=1, delay_ms=2000, timestamp_ms=T0 + 20),
        job_event(EventType.STARTED, "emails", payload, worker_id="w2", attempt=2, timestamp_ms=T0 + 2030),
    ]
    if outcome == EventType.COMPLETED:
        events.append(
            job_event(
                EventType.COMPLETED,
                "emails",
                payload,
                worker_id="w2",
                attempt=2,
                duration_ms=70.5,
                timestamp_ms=T0 + 2100,
            )
        )
    else:
        events.append(
            job_event(
                EventType.FAILED, "emails", payload, worker_id="w2", attempt=2, error="bounced", timestamp_ms=T0 + 2100
            )
        )
        events.append(
            job_event(
                EventType.DEAD_LETTERED,
                "emails",
                payload,
                include_payload=True,
                worker_id="w2",
                attempt=2,
                error="bounced",
                timestamp_ms=T0 + 2100,
            )
        )
    return events


def test_a_completed_job_has_its_row_fields_and_timeline(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    emit(r, keyspace, *_lifecycle("j1", outcome=EventType.COMPLETED))
    archive(r, engine, keyspace)
    row = job(engine, "j1")
    assert row["state"] == "completed"
    assert row["name"] == "SendWelcomeEmail"
    assert row["attempts"] == 2
    assert (row["enqueued_at"], row["started_at"], row["finished_at"], row["updated_at"]) == (
        T0,
        T0 + 2030,
        T0 + 2100,
        T0 + 2100,
    )
    assert row["duration_ms"] == 70.5
    assert row["worker_id"] == "w2"
    assert row["error"] == "SMTP timeout"  # the last error stays for search
    assert row["last_stream_id"] == stream_ids(r, keyspace)[-1]
    stored = json.loads(row["payload"])
    assert json.loads(stored["data"])["properties"]["password"] == "***"
    assert "hunter2" not in row["payload"] and "hunter2" not in (row["search_text"] or "")
    assert "SendWelcomeEmail" in row["search_text"] and "SMTP timeout" in row["search_text"]
    fields = {(f["key"], f["value_norm"]) for f in rows(engine, job_fields, order=("key",))}
    assert fields == {("email", "ann@example.com"), ("user.id", "42"), ("user.vip", "true"), ("password", "***")}
    timeline = rows(engine, job_events, job_events.c.job_pk == row["id"])
    assert [e["type"] for e in timeline] == ["enqueued", "started", "failed", "retried", "started", "completed"]
    assert [e["stream_id"] for e in timeline] == stream_ids(r, keyspace)
    assert timeline[2]["error"] == "SMTP timeout" and timeline[2]["attempt"] == 1 and timeline[2]["worker_id"] == "w1"
    assert all("hunter2" not in (e["data"] or "") for e in timeline)
    legacy = rows(engine, legacy_job_archive)
    assert [(x["job_id"], x["queue"], x["status"]) for x in legacy] == [("j1", "emails", "completed")]
    assert "hunter2" not in legacy[0]["payload"]


def test_a_dead_lettered_job_is_dead_with_its_last_error(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    emit(r, keyspace, *_lifecycle("j2", outcome=EventType.DEAD_LETTERED))
    archive(r, engine, keyspace)
    row = job(engine, "j2")
    assert (row["state"], row["error"], row["finished_at"], row["attempts"]) == ("dead", "bounced", T0 + 2100, 2)
    legacy = rows(engine, legacy_job_archive)
    assert [(x["status"], x["error"]) for x in legacy] == [("failed", "bounced")]


def test_operator_events_delete_promote_retry_and_recovery(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    delayed = _payload("d1")
    emit(
        r,
        keyspace,
        job_event(EventType.ENQUEUED, "emails", delayed, include_payload=True, delay_ms=60_000, timestamp_ms=T0),
        job_event(EventType.ENQUEUED, "emails", _payload("x1"), include_payload=True, timestamp_ms=T0),
        job_event(EventType.ENQUEUED, "emails", _payload("s1"), include_payload=True, timestamp_ms=T0),
    )
    archive(r, engine, keyspace)
    assert job(engine, "d1")["state"] == "delayed"
    emit(
        r,
        keyspace,
        job_event(EventType.PROMOTED, "emails", "d1", actor="alice", timestamp_ms=T0 + 1),
        job_event(EventType.OPERATOR, "emails", action="promote", actor="alice", count=1, timestamp_ms=T0 + 1),
        job_event(EventType.DELETED, "emails", "x1", actor="bob", timestamp_ms=T0 + 2),
        job_event(EventType.STARTED, "emails", "s1", worker_id="dead-worker", attempt=1, timestamp_ms=T0 + 3),
        job_event(EventType.RECOVERED, "emails", "s1", actor="recoverer", count=1, timestamp_ms=T0 + 4),
        job_event(
            EventType.RECOVERED, "emails", worker_id="dead-worker", actor="recoverer", count=3, timestamp_ms=T0 + 5
        ),
        job_event(EventType.OPERATOR, "emails", action="pause", actor="carol", count=0, timestamp_ms=T0 + 6),
        job_event(EventType.RETRIED, "emails", "x1", actor="dave", timestamp_ms=T0 + 7),
    )
    archive(r, engine, keyspace)
    assert job(engine, "d1")["state"] == "waiting"
    assert job(engine, "s1")["state"] == "waiting"
    x1 = job(engine, "x1")
    assert (x1["state"], x1["finished_at"]) == ("waiting", None)
    actions = [(a["action"], a["actor"], a["count"], a["job_id"]) for a in rows(engine, operator_actions)]
    assert actions == [
        ("promote", "alice", 1, "d1"),
        ("promote", "alice", 1, None),
        ("delete", "bob", 1, "x1"),
        ("pause", "carol", 0, None),
        ("retry", "dave", 1, "x1"),
    ]
    queue_events = rows(engine, job_events, job_events.c.job_pk.is_(None))
    assert [(e["type"], e["actor"]) for e in queue_events] == [
        ("operator", "alice"),
        ("recovered", "recoverer"),
        ("operator", "carol"),
    ]
    assert len(archived_ids(engine)) == len(stream_ids(r, keyspace))


def test_undecodable_entries_are_kept_and_the_archiver_goes_on(
    r: redis.Redis, keyspace: KeySpace, engine: Engine
) -> None:
    stream = keyspace.events()
    r.xadd(stream, {"event": b"not json"})
    r.xadd(stream, {"event": b'{"type":"started","queue":"q","timestamp":"soon","token":"s3cr3t"}'})
    r.xadd(stream, {"other": b"field"})
    r.xadd(stream, {"event": b"\xff\xfe"})
    emit(r, keyspace, job_event(EventType.ENQUEUED, "q", _payload("ok"), include_payload=True, timestamp_ms=T0))
    archive(r, engine, keyspace)
    events = rows(engine, job_events)
    assert [e["type"] for e in events] == ["undecodable"] * 4 + ["enqueued"]
    assert events[0]["data"] == "not json"
    assert "s3cr3t" not in events[1]["data"] and events[1]["queue"] == "q"
    assert all(e["error"] for e in events[:4])
    assert job(engine, "ok", queue="q")["state"] == "waiting"


def test_redelivery_changes_nothing(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    emit(r, keyspace, *_lifecycle("j3", outcome=EventType.COMPLETED))
    first = Archiver(r, engine, keyspace=keyspace, consumer="a")
    first.run_once()
    before = {t.name: rows(engine, t) for t in (jobs, job_events, job_fields, legacy_job_archive, operator_actions)}
    # The same entries again, as after a crash between commit and XACK: a new group re-reads the stream.
    again = Archiver(r, engine, keyspace=keyspace, group="again", consumer="b")
    result = again.run_once()
    assert (result.events, result.duplicates) == (0, len(stream_ids(r, keyspace)))
    after = {t.name: rows(engine, t) for t in (jobs, job_events, job_fields, legacy_job_archive, operator_actions)}
    assert after == before


def test_events_delivered_out_of_order_never_set_a_job_back(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    emit(r, keyspace, *_lifecycle("j4", outcome=EventType.COMPLETED))
    ids = stream_ids(r, keyspace)
    # Another archiver takes the first two entries and is slow; this one archives the rest first.
    slow = Archiver(r, engine, keyspace=keyspace, consumer="slow", batch=2)
    raw = slow._read(None)
    assert [entry_id for entry_id, _ in raw] == ids[:2]
    archive(r, engine, keyspace, consumer="fast")
    assert job(engine, "j4")["state"] == "completed"
    entries = [slow._decoder.entry(entry_id, fields) for entry_id, fields in raw]
    slow._write(entries)
    row = job(engine, "j4")
    assert (row["state"], row["enqueued_at"], row["finished_at"]) == ("completed", T0, T0 + 2100)
    assert json.loads(row["payload"])["id"] == "j4"
    assert sorted(archived_ids(engine)) == sorted(ids)
    with engine.connect() as connection:
        assert connection.execute(select(legacy_job_archive.c.status)).scalars().all() == ["completed"]


def test_an_attempt_written_as_one_event_has_its_start_in_the_row_and_the_timeline(
    r: redis.Redis, keyspace: KeySpace, engine: Engine
) -> None:
    payload = _payload("j9")
    emit(
        r,
        keyspace,
        job_event(EventType.ENQUEUED, "emails", payload, include_payload=True, timestamp_ms=T0),
        job_event(
            EventType.COMPLETED, "emails", payload, worker_id="w1", attempt=1, duration_ms=70.5,
            started_at_ms=T0 + 30, timestamp_ms=T0 + 100,
        ),
    )  # fmt: skip
    archive(r, engine, keyspace)

    row = job(engine, "j9")
    assert (row["state"], row["started_at"], row["finished_at"], row["duration_ms"]) == (
        "completed",
        T0 + 30,
        T0 + 100,
        70.5,
    )
    shown = timeline(engine, "j9")
    assert [(e.type, e.at, e.attempt, e.worker_id) for e in shown.events] == [
        ("enqueued", T0, None, None),
        ("started", T0 + 30, 1, "w1"),
        ("completed", T0 + 100, 1, "w1"),
    ]
