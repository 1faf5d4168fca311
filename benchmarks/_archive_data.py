"""Data for benchmarks/archive.py: events as the Python worker writes them, old archive rows, fresh archives."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from zenith_archive import connect, migrate
from zenith_archive.schema import job_events, job_fields, jobs
from zenith_protocol import EventType, JobEvent, JobPayload, KeySpace
from zenith_sdk.events import EventEmitter, job_event

QUEUES = ("emails", "invoices", "reports", "webhooks", "thumbnails")
NAMES = {"emails": "send-email", "invoices": "send-invoice", "reports": "build-report"}
REGIONS = ("eu-west", "us-east", "ap-south")
WORKERS = 4
WINDOW = 100
"""Jobs in flight together: their events interleave in the stream as a busy worker pool's do."""
EMIT_CHUNK = 1_000
INSERT_CHUNK = 10_000
DAY_MS = 86_400_000


def _payload(index: int, queue: str, created_ms: int) -> JobPayload:
    properties: dict[str, Any] = {
        "customer": f"cust-{index % 5_000:05d}",
        "email": f"user{index % 20_000}@example.com",
        "amount": (index % 1_000) + 0.5,
        "region": REGIONS[index % len(REGIONS)],
        "order": {"id": f"ord-{index}", "items": index % 7 + 1},
    }
    name = NAMES.get(queue, f"{queue}-job")
    return JobPayload.create(name, properties, job_id=f"bench-{index:08d}", created_at_ms=created_ms)


def _lifecycle(index: int, now_ms: int) -> list[JobEvent]:
    """One job's events, as the producer and worker write them: 75% complete, 15% after a retry, 10% dead."""
    queue = QUEUES[index % len(QUEUES)]
    job = _payload(index, queue, now_ms)
    worker = f"bench-worker-{index % WORKERS}"
    events = [job_event(EventType.ENQUEUED, queue, job, include_payload=True, timestamp_ms=now_ms)]
    outcome = index % 20
    attempts = 1 if outcome < 15 or outcome == 18 else 2
    for attempt in range(1, attempts + 1):
        at = now_ms + attempt * 10
        events.append(job_event(EventType.STARTED, queue, job, worker_id=worker, attempt=attempt, timestamp_ms=at))
        last = attempt == attempts
        if outcome < 15 or (outcome < 18 and last):
            done = job_event(
                EventType.COMPLETED, queue, job, worker_id=worker, attempt=attempt, duration_ms=8.5, timestamp_ms=at + 5
            )
            events.append(done)
            continue
        error = f"TimeoutError: upstream took too long (attempt {attempt})"
        failed = job_event(
            EventType.FAILED, queue, job, error=error, worker_id=worker, attempt=attempt, timestamp_ms=at + 5
        )
        events.append(failed)
        if not last:
            retry = job_event(
                EventType.RETRIED, queue, job, delay_ms=1_000, worker_id=worker, attempt=attempt, timestamp_ms=at + 6
            )
            events.append(retry)
        else:
            dead = job.model_copy(update={"attempts": attempt, "error": error, "failed_at_ms": at + 6})
            events.append(
                job_event(
                    EventType.DEAD_LETTERED,
                    queue,
                    dead,
                    error=error,
                    include_payload=True,
                    worker_id=worker,
                    attempt=attempt,
                    timestamp_ms=at + 6,
                )
            )
    return events


def lifecycle_events(count: int, *, first_job: int, now_ms: int) -> Iterator[JobEvent]:
    """``count`` events of jobs numbered from ``first_job``, ``WINDOW`` jobs in flight at a time."""
    produced = 0
    index = first_job
    while produced < count:
        seqs = [_lifecycle(index + offset, now_ms + offset) for offset in range(WINDOW)]
        index += WINDOW
        longest = max(len(seq) for seq in seqs)
        for step in range(longest):
            for seq in seqs:
                if step < len(seq):
                    yield seq[step]
                    produced += 1
                    if produced == count:
                        return


def fill_stream(client: redis.Redis, space: KeySpace, count: int, *, first_job: int, now_ms: int) -> int:
    """Append ``count`` events to the events stream with the SDK's emitter; returns the next free job number."""
    emitter = EventEmitter(client, keyspace=space, live_log=False, stream_maxlen=10**9)
    chunk: list[JobEvent] = []
    for event in lifecycle_events(count, first_job=first_job, now_ms=now_ms):
        chunk.append(event)
        if len(chunk) == EMIT_CHUNK:
            emitter.emit(*chunk)
            chunk = []
    emitter.emit(*chunk)
    return first_job + count  # more than the jobs used: numbers stay unique


def _old_job(pk: int, finished_ms: int) -> dict[str, Any]:
    queue = QUEUES[pk % len(QUEUES)]
    data = f'{{"job":"old-job","properties":{{"customer":"cust-{pk % 5_000:05d}"}}}}'
    return {
        "id": pk,
        "queue": queue,
        "job_id": f"old-{pk:08d}",
        "name": "old-job",
        "state": "completed",
        "attempts": 1,
        "enqueued_at": finished_ms - 20,
        "started_at": finished_ms - 10,
        "finished_at": finished_ms,
        "updated_at": finished_ms,
        "duration_ms": 10.0,
        "worker_id": "old-worker",
        "payload": json.dumps({"id": f"old-{pk:08d}", "data": data}, separators=(",", ":")),
        "search_text": f"old-job\n{data}",
        "last_stream_id": f"{finished_ms}-0",
    }


def _old_event(pk: int, job: dict[str, Any], kind: str, at: int) -> dict[str, Any]:
    return {
        "stream_id": f"{at}-{pk}-{kind}",
        "job_pk": pk,
        "queue": job["queue"],
        "job_id": job["job_id"],
        "type": kind,
        "at": at,
        "attempt": 1,
        "worker_id": "old-worker",
        "data": f'{{"type":"{kind}","queue":"{job["queue"]}","jobId":"{job["job_id"]}"}}',
    }


def fill_old_rows(engine: Engine, rows: int, *, now_ms: int, age_days: float) -> int:
    """About ``rows`` rows finished ``age_days`` ago, bulk-inserted: per job 1 job row, 2 events, 1 field."""
    finished = now_ms - int(age_days * DAY_MS)
    job_count = max(1, rows // 4)
    for start in range(1, job_count + 1, INSERT_CHUNK):
        pks = range(start, min(start + INSERT_CHUNK, job_count + 1))
        job_rows = [_old_job(pk, finished + pk) for pk in pks]
        events = [
            _old_event(pk, job, kind, job["finished_at"] - offset)
            for pk, job in zip(pks, job_rows, strict=True)
            for kind, offset in (("started", 10), ("completed", 0))
        ]
        fields = [{"job_pk": pk, "key": "customer", "value_norm": f"cust-{pk % 5_000:05d}"} for pk in pks]
        with engine.begin() as connection:
            connection.execute(jobs.insert(), job_rows)
            connection.execute(job_events.insert(), events)
            connection.execute(job_fields.insert(), fields)
    if engine.dialect.name == "postgresql":  # explicit ids leave the sequence behind
        with engine.begin() as connection:
            connection.execute(
                text("SELECT setval(pg_get_serial_sequence('zenith_jobs', 'id'), max(id)) FROM zenith_jobs")
            )
    return job_count * 4


def count_old_rows(engine: Engine) -> int:
    """Rows :func:`fill_old_rows` wrote that are still there."""
    with engine.connect() as connection:
        old_jobs = select(jobs.c.id).where(jobs.c.job_id.like("old-%"))
        counts = [
            select(func.count()).select_from(jobs).where(jobs.c.job_id.like("old-%")),
            select(func.count()).select_from(job_events).where(job_events.c.job_id.like("old-%")),
            select(func.count()).select_from(job_fields).where(job_fields.c.job_pk.in_(old_jobs)),
        ]
        return sum(int(connection.execute(query).scalar_one()) for query in counts)


def count_rows(engine: Engine) -> dict[str, int]:
    """Rows of the three tables ingest and cleanup touch most."""
    with engine.connect() as connection:
        return {
            table.name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (jobs, job_events, job_fields)
        }


@contextmanager
def sqlite_archive(path: Path) -> Iterator[Engine]:
    """A fresh, migrated SQLite archive at ``path`` (what was there is deleted), removed afterwards."""
    names = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    for name in names:
        name.unlink(missing_ok=True)
    engine = connect(f"sqlite:///{path}")
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        for name in names:
            name.unlink(missing_ok=True)


@contextmanager
def pg_archive(url: str) -> Iterator[Engine | str]:
    """A fresh, migrated archive in a schema of its own on the PostgreSQL at ``url`` (dropped afterwards).

    Yields a string saying why instead when the server does not answer.
    """
    schema = f"zenith_bench_{uuid.uuid4().hex[:10]}"
    admin = connect(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        yield f"PostgreSQL at {make_url(url).render_as_string()} is not reachable ({' '.join(str(exc.orig).split())})"
        return
    engine = connect(make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}))
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
