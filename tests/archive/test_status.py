"""``status``: the group's lag and pending entries, its consumers, the archive's rows."""

from __future__ import annotations

import redis
from sqlalchemy.engine import Engine

from archive.helpers import emit, stream_ids
from zenith_archive.archiver import Archiver
from zenith_archive.migrations import head_revision
from zenith_archive.status import status
from zenith_protocol import EventType, JobPayload, KeySpace
from zenith_sdk.events import job_event


def _enqueue(r: redis.Redis, keyspace: KeySpace, count: int) -> None:
    jobs = [JobPayload.create("Ping", {}, job_id=f"p{n}") for n in range(count)]
    emit(r, keyspace, *(job_event(EventType.ENQUEUED, "q", job, include_payload=True) for job in jobs))


def test_status_before_and_after_archiving(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    _enqueue(r, keyspace, 5)
    before = status(r, engine, keyspace=keyspace)
    assert (before.stream_length, before.group_exists, before.lag, before.pending) == (5, False, 5, 0)
    assert before.rows["zenith_jobs"] == 0 and before.revision == head_revision()
    archiver = Archiver(r, engine, keyspace=keyspace, consumer="one", batch=3)
    raw = archiver._read(None)  # three entries read, not yet written: pending
    held = status(r, engine, keyspace=keyspace)
    assert (held.group_exists, held.lag, held.pending) == (True, 2, 3)
    assert [(c.name, c.pending) for c in held.consumers] == [("one", 3)]
    entries = [archiver._decoder.entry(entry_id, fields) for entry_id, fields in raw]
    archiver._write(entries)
    r.xack(keyspace.events(), "archive", *[entry_id for entry_id, _ in raw])
    archiver.run_once()
    done = status(r, engine, keyspace=keyspace)
    assert (done.lag, done.pending, done.gap) == (0, 0, False)
    assert done.last_archived_id == stream_ids(r, keyspace)[-1] == done.last_id
    assert done.rows["zenith_jobs"] == 5 and done.rows["zenith_job_events"] == 5
    assert done.to_json()["consumers"] == [{"name": "one", "pending": 0, "idle_ms": done.consumers[0].idle_ms}]


def test_a_trimmed_gap_is_reported(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    _enqueue(r, keyspace, 3)
    Archiver(r, engine, keyspace=keyspace).run_once()
    _enqueue(r, keyspace, 3)
    r.xtrim(keyspace.events(), maxlen=1, approximate=False)  # two entries never archived are gone
    assert status(r, engine, keyspace=keyspace).gap is True


def test_status_of_an_archive_not_migrated(r: redis.Redis, keyspace: KeySpace, blank_engine: Engine) -> None:
    found = status(r, blank_engine, keyspace=keyspace)
    assert (found.revision, found.rows, found.stream_length, found.lag) == (None, {}, 0, 0)
