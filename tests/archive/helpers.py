"""Helpers of the archive tests: writing events to the stream, running an archiver to the end, reading rows."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import redis
from sqlalchemy import Table, select
from sqlalchemy.engine import Engine

from zenith_archive.archiver import Archiver
from zenith_archive.schema import job_events, jobs
from zenith_protocol import JobEvent, KeySpace
from zenith_sdk.events import EventEmitter


def emit(r: redis.Redis, space: KeySpace, *events: JobEvent) -> None:
    """Append ``events`` to the stream as the SDK writes them."""
    EventEmitter(r, keyspace=space, live_log=False).emit(*events)


def drain(archiver: Archiver, *, limit: int = 10_000) -> int:
    """Run ``archiver`` until a read finds nothing new; returns the entries it handled."""
    handled = 0
    for _ in range(limit):
        result = archiver.run_once()
        count = result.events + result.duplicates
        if count == 0:
            return handled
        handled += count
    raise AssertionError(f"the archiver still found entries after {limit} batches")


def archive(r: redis.Redis, engine: Engine, space: KeySpace, **options: Any) -> Archiver:
    """An archiver on the test's key space, run until the stream is archived."""
    archiver = Archiver(r, engine, keyspace=space, **options)
    drain(archiver)
    return archiver


def rows(engine: Engine, table: Table, *where: Any, order: Collection[str] = ()) -> list[dict[str, Any]]:
    """Every row of ``table`` (matching ``where``) as a dict, in ``order`` (default: its primary key)."""
    columns = [table.c[name] for name in order] or list(table.primary_key.columns)
    with engine.connect() as connection:
        query = select(table).where(*where).order_by(*columns)
        return [dict(row) for row in connection.execute(query).mappings()]


def job(engine: Engine, job_id: str, queue: str = "emails") -> dict[str, Any]:
    """The ``zenith_jobs`` row of one job."""
    found = rows(engine, jobs, jobs.c.queue == queue, jobs.c.job_id == job_id)
    assert len(found) == 1, found
    return found[0]


def stream_ids(r: redis.Redis, space: KeySpace) -> list[str]:
    """Every entry id of the events stream, oldest first."""
    return [entry_id.decode() for entry_id, _ in r.xrange(space.events()) or [] if isinstance(entry_id, bytes)]


def archived_ids(engine: Engine) -> list[str]:
    """Every stream id in ``zenith_job_events`` (duplicates included, were there any)."""
    with engine.connect() as connection:
        return list(connection.execute(select(job_events.c.stream_id)).scalars())
