"""Several archivers in one group share the stream, and a dead one's entries are taken over."""

from __future__ import annotations

import threading
import time

import redis
from patience import HANG_S
from sqlalchemy.engine import Engine

from archive.helpers import archived_ids, emit, rows, stream_ids
from zenith_archive.archiver import Archiver
from zenith_archive.schema import archive_meta, jobs
from zenith_protocol import EventType, JobEvent, JobPayload, KeySpace
from zenith_sdk.events import job_event


def _events(count: int) -> list[JobEvent]:
    events = []
    for number in range(count):
        job = JobPayload.create("Thumb", {"n": number}, job_id=f"t{number}")
        events.append(job_event(EventType.ENQUEUED, "img", job, include_payload=True))
        events.append(job_event(EventType.STARTED, "img", job, worker_id="w", attempt=1))
        events.append(job_event(EventType.COMPLETED, "img", job, worker_id="w", attempt=1, duration_ms=1.0))
    return events


def test_two_archivers_share_the_load_and_archive_each_entry_once(
    r: redis.Redis, keyspace: KeySpace, engine: Engine
) -> None:
    emit(r, keyspace, *_events(300))
    archivers = [Archiver(r, engine, keyspace=keyspace, consumer=name, batch=40) for name in ("a", "b")]
    threads = [threading.Thread(target=archiver.run) for archiver in archivers]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + HANG_S
        while len(archived_ids(engine)) < len(stream_ids(r, keyspace)):
            assert time.monotonic() < deadline, "the archivers did not catch up with the stream"
            time.sleep(0.05)
    finally:
        for archiver in archivers:
            archiver.stop()
        for thread in threads:
            thread.join(HANG_S)
    assert sorted(archived_ids(engine)) == sorted(stream_ids(r, keyspace))
    assert {row["state"] for row in rows(engine, jobs)} == {"completed"}
    assert len(rows(engine, jobs)) == 300
    assert {row["key"] for row in rows(engine, archive_meta)} == {"consumer:a", "consumer:b"}
    assert r.xpending(keyspace.events(), "archive")["pending"] == 0


def test_a_dead_archivers_pending_entries_are_claimed(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    emit(r, keyspace, *_events(5))
    dead = Archiver(r, engine, keyspace=keyspace, consumer="dead")
    assert len(dead._read(None)) == 15  # read, never written nor acknowledged: then it died
    alive = Archiver(r, engine, keyspace=keyspace, consumer="alive", claim_idle_ms=0)
    result = alive.run_once()
    assert result.events == 15
    assert sorted(archived_ids(engine)) == sorted(stream_ids(r, keyspace))
    assert r.xpending(keyspace.events(), "archive")["pending"] == 0
