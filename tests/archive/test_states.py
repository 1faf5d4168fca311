"""Which final states are archived is configurable, as the Node archive's archiveCompleted/Failed/Enqueued were."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy.engine import Engine

from archive.helpers import archive, emit, job, rows
from zenith_archive.archiver import Archiver
from zenith_archive.schema import job_events, job_fields, legacy_job_archive
from zenith_protocol import EventType, JobEvent, JobPayload, KeySpace
from zenith_sdk.events import job_event


def _run(job_id: str, outcome: EventType) -> list[JobEvent]:
    payload = JobPayload.create("Charge", {"amount": 5}, job_id=job_id)
    events = [
        job_event(EventType.ENQUEUED, "pay", payload, include_payload=True),
        job_event(EventType.STARTED, "pay", payload, worker_id="w", attempt=1),
    ]
    if outcome == EventType.COMPLETED:
        events.append(job_event(EventType.COMPLETED, "pay", payload, worker_id="w", attempt=1, duration_ms=2.0))
    else:
        events.append(job_event(EventType.DEAD_LETTERED, "pay", payload, include_payload=True, error="declined"))
    return events


def test_completed_jobs_left_out_keep_only_their_summary_row(
    r: redis.Redis, keyspace: KeySpace, engine: Engine
) -> None:
    emit(r, keyspace, *_run("ok", EventType.COMPLETED), *_run("bad", EventType.DEAD_LETTERED))
    archive(r, engine, keyspace, states={"dead"}, batch=2)  # the completion lands in a later batch
    ok, bad = job(engine, "ok", "pay"), job(engine, "bad", "pay")
    assert (ok["state"], ok["payload"], ok["search_text"], ok["name"]) == ("completed", None, None, "Charge")
    assert bad["state"] == "dead" and bad["payload"] is not None
    assert {e["job_id"] for e in rows(engine, job_events)} == {"bad"}
    assert {f["job_pk"] for f in rows(engine, job_fields)} == {bad["id"]}
    assert [(x["job_id"], x["status"]) for x in rows(engine, legacy_job_archive)] == [("bad", "failed")]


def test_waiting_also_writes_each_enqueued_job_to_the_legacy_table(
    r: redis.Redis, keyspace: KeySpace, engine: Engine
) -> None:
    emit(r, keyspace, *_run("ok", EventType.COMPLETED))
    archive(r, engine, keyspace, states={"waiting", "completed"})
    assert [x["status"] for x in rows(engine, legacy_job_archive)] == ["waiting", "completed"]


def test_legacy_rows_can_be_turned_off(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    emit(r, keyspace, *_run("ok", EventType.COMPLETED))
    archive(r, engine, keyspace, legacy_tables=False)
    assert rows(engine, legacy_job_archive) == []
    assert job(engine, "ok", "pay")["state"] == "completed"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"states": {"active"}}, "states may name"),
        ({"batch": 0}, "batch must be at least 1"),
        ({"claim_idle_ms": -1}, "claim_idle_ms must be 0 or more"),
    ],
)
def test_bad_options_are_refused(
    r: redis.Redis, keyspace: KeySpace, engine: Engine, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Archiver(r, engine, keyspace=keyspace, **options)  # type: ignore[arg-type]
