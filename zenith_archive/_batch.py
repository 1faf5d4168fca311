"""Writing one batch of entries in one transaction, idempotently, on any of the three dialects.

Entries already archived (their stream id is in ``zenith_job_events``) are skipped whole, so a
batch delivered twice changes nothing. Job rows are created if missing, then locked (``SELECT ...
FOR UPDATE``; SQLite's writer lock is taken by ``BEGIN IMMEDIATE``) and brought up to date.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert

from zenith_archive._ingest import Entry, JobRow, clean, merge, small_int
from zenith_archive.schema import (
    FINAL_STATES,
    LEGACY_STATUS,
    State,
    archive_meta,
    job_events,
    job_fields,
    jobs,
    legacy_job_archive,
    operator_actions,
)

__all__ = ["BatchResult", "insert_ignore", "upsert_meta", "write_batch"]

_ROW_COLUMNS = (
    "state",
    "attempts",
    "name",
    "enqueued_at",
    "started_at",
    "finished_at",
    "updated_at",
    "duration_ms",
    "worker_id",
    "error",
    "payload",
    "search_text",
    "last_stream_id",
)
_MYSQL = ("mysql", "mariadb")
JobKey = tuple[str, str]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    """What one batch wrote: new events (``undecodable`` of them did not decode), jobs touched, entries seen before."""

    events: int
    jobs: int
    undecodable: int
    duplicates: int


def insert_ignore(connection: Connection, table: Table) -> Insert:
    """An INSERT that skips rows whose unique key is taken (``ON CONFLICT DO NOTHING`` / ``INSERT IGNORE``)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect in _MYSQL:
        return mysql.insert(table).prefix_with("IGNORE")
    return sqlite.insert(table).on_conflict_do_nothing()


def upsert_meta(connection: Connection, key: str, value: str) -> None:
    """Set ``zenith_archive_meta[key] = value``."""
    dialect = connection.dialect.name
    row = {"key": key[:64], "value": value}
    if dialect == "postgresql":
        pg = postgresql.insert(archive_meta).values(row)
        connection.execute(pg.on_conflict_do_update(index_elements=["key"], set_={"value": pg.excluded.value}))
    elif dialect in _MYSQL:
        my = mysql.insert(archive_meta).values(row)
        connection.execute(my.on_duplicate_key_update(value=my.inserted.value))
    else:
        lite = sqlite.insert(archive_meta).values(row)
        connection.execute(lite.on_conflict_do_update(index_elements=["key"], set_={"value": lite.excluded.value}))


def _key(entry: Entry) -> JobKey | None:
    if entry.job_id is None:
        return None
    return clean(entry.queue, 255) or "", clean(entry.job_id, 255) or ""


def _lock_rows(connection: Connection, keys: Collection[JobKey]) -> dict[JobKey, JobRow]:
    """The rows of ``keys`` that exist, locked until the transaction ends."""
    if not keys:
        return {}
    queues = sorted({queue for queue, _ in keys})
    ids = sorted({job_id for _, job_id in keys})
    query = (
        select(jobs.c.id, jobs.c.queue, jobs.c.job_id, *(jobs.c[name] for name in _ROW_COLUMNS))
        .where(jobs.c.queue.in_(queues), jobs.c.job_id.in_(ids))
        .order_by(jobs.c.id)
        .with_for_update()
    )
    rows: dict[JobKey, JobRow] = {}
    for found in connection.execute(query).mappings():
        key = (found["queue"], found["job_id"])
        if key in keys:
            rows[key] = JobRow(**{name: found[name] for name in ("id", *_ROW_COLUMNS)})
    return rows


def _existing(connection: Connection, keys: Collection[JobKey]) -> set[JobKey]:
    """Which of ``keys`` have a row already (read without a lock: only to know which to create)."""
    if not keys:
        return set()
    queues = sorted({queue for queue, _ in keys})
    ids = sorted({job_id for _, job_id in keys})
    query = select(jobs.c.queue, jobs.c.job_id).where(jobs.c.queue.in_(queues), jobs.c.job_id.in_(ids))
    found = {(queue, job_id) for queue, job_id in connection.execute(query)}
    return found & set(keys)


def _create_rows(connection: Connection, rows: dict[JobKey, JobRow]) -> None:
    """Insert the new jobs' rows whole (one written row, instead of an empty one and an update)."""
    # In key order, so that two archivers creating the same jobs wait for each other instead of deadlocking.
    values = [
        {"queue": queue, "job_id": job_id, **{name: getattr(row, name) for name in _ROW_COLUMNS}}
        for (queue, job_id), row in sorted(rows.items())
    ]
    if values:
        connection.execute(insert_ignore(connection, jobs), values)


def _adopt(rows: dict[JobKey, JobRow], made: dict[JobKey, JobRow]) -> set[JobKey]:
    """Put the rows this batch created (``made``, now with their ids) in ``rows``; returns their keys."""
    created: set[JobKey] = set()
    for key, row in made.items():
        found = rows.get(key)
        # Its last event tells this batch's row from one another archiver created meanwhile.
        if found is not None and found.last_stream_id == row.last_stream_id:
            row.id = found.id
            rows[key] = row
            created.add(key)
    return created


def _ms_datetime(ms: int | None) -> datetime | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).replace(tzinfo=None)


def _legacy_rows(row: JobRow, key: JobKey, archived: Collection[str], enqueued: list[Entry]) -> list[dict[str, Any]]:
    """``flux_job_archive`` rows, as the Node console wrote them, for the job's archived transitions."""
    transitions = [(entry, LEGACY_STATUS[State.WAITING]) for entry in enqueued if State.WAITING in archived]
    transitions += [
        (entry, LEGACY_STATUS[state]) for entry, state in row.finals if state in archived and state in LEGACY_STATUS
    ]
    return [
        {
            "job_id": key[1][:64],
            "queue": key[0][:128],
            "status": status,
            "payload": (entry.job.payload if entry.job is not None else None) or row.payload,
            "error": row.error if status == LEGACY_STATUS[State.DEAD] else None,
            "created_at": _ms_datetime(row.enqueued_at),
            "archived_at": _ms_datetime(entry.event.timestamp if entry.event is not None else None),
        }
        for entry, status in transitions
    ]


def _event_row(entry: Entry, job_pk: int | None) -> dict[str, Any]:
    event = entry.event
    return {
        "stream_id": entry.stream_id,
        "job_pk": job_pk,
        "queue": clean(entry.queue, 255) or "",
        "job_id": clean(entry.job_id, 255),
        "type": entry.type[:32],
        "at": event.timestamp if event is not None else entry.order[0],
        "attempt": small_int(event.attempt) if event is not None else None,
        "worker_id": clean(event.worker_id, 255) if event is not None else None,
        "actor": clean(event.actor, 255) if event is not None else None,
        "error": clean(event.error) if event is not None else clean(entry.reason),
        "data": clean(entry.data),
    }


def _action_rows(entries: Iterable[Entry]) -> list[dict[str, Any]]:
    rows = []
    for entry in entries:
        action = entry.operator_action()
        if action is not None and entry.event is not None:
            rows.append(
                {
                    "stream_id": entry.stream_id,
                    "at": entry.event.timestamp,
                    "actor": clean(entry.event.actor, 255),
                    "action": clean(action[0], 64) or "",
                    "queue": clean(entry.queue, 255) or "",
                    "count": small_int(action[1]),
                    "job_id": clean(entry.job_id, 255),
                }
            )
    return rows


class _Writer:
    """The steps of one batch, on one connection inside its transaction."""

    def __init__(self, connection: Connection, archived: frozenset[str], legacy: bool) -> None:
        self.connection = connection
        self.archived = archived
        self.legacy = legacy

    def new_entries(self, entries: Sequence[Entry]) -> list[Entry]:
        ids = [entry.stream_id for entry in entries]
        query = select(job_events.c.stream_id).where(job_events.c.stream_id.in_(ids))
        seen = set(self.connection.execute(query).scalars())
        fresh: dict[str, Entry] = {}
        for entry in entries:
            if entry.stream_id not in seen:
                fresh.setdefault(entry.stream_id, entry)
        return sorted(fresh.values(), key=lambda entry: entry.order)

    def jobs(self, entries: Sequence[Entry]) -> tuple[dict[JobKey, JobRow], set[int]]:
        """Brings every job the entries touch up to date; returns the rows and the ids of stripped jobs."""
        per_job: dict[JobKey, list[Entry]] = defaultdict(list)
        linked: set[JobKey] = set()
        for entry in entries:
            key = _key(entry)
            if key is None:
                continue
            linked.add(key)
            if entry.touches_job:
                per_job[key].append(entry)
        made = self._new_rows(per_job)
        rows = _lock_rows(self.connection, linked)
        created = _adopt(rows, made)
        stripped: set[int] = set()
        legacy: list[dict[str, Any]] = []
        for key, job_entries in per_job.items():
            row = rows.get(key)
            if row is None:  # MySQL's PAD SPACE collations make "a " and "a" the same key: the first one wins
                logger.warning("job %r of queue %r matches another job's row; its events are kept unlinked", *key[::-1])
                continue
            if key not in created:
                self._merge(row, job_entries)
            if row.state in FINAL_STATES and row.state not in self.archived:
                stripped.add(row.id)
            if self.legacy:
                enqueued = [entry for entry in job_entries if entry.type == "enqueued"]
                legacy += _legacy_rows(row, key, self.archived, enqueued)
        self._update([rows[key] for key in per_job if key in rows and key not in created])
        self._fields([rows[key] for key in per_job if key in rows], stripped, {rows[key].id for key in created})
        if legacy:
            self.connection.execute(legacy_job_archive.insert(), legacy)
        return rows, stripped

    def _new_rows(self, per_job: dict[JobKey, list[Entry]]) -> dict[JobKey, JobRow]:
        """Create the rows of jobs the archive does not hold yet, brought up to date; returns them (no ids yet)."""
        missing = per_job.keys() - _existing(self.connection, per_job.keys())
        made: dict[JobKey, JobRow] = {}
        for key in missing:
            row = JobRow(id=0, state=State.WAITING, attempts=0)
            self._merge(row, per_job[key])
            made[key] = row
        _create_rows(self.connection, made)
        return made

    def _merge(self, row: JobRow, job_entries: list[Entry]) -> None:
        dropped_before = row.state in FINAL_STATES and row.state not in self.archived
        merge(row, job_entries, skip_fill=dropped_before)
        if row.state in FINAL_STATES and row.state not in self.archived:
            row.payload = row.search_text = None
            row.new_fields = None

    def _update(self, rows: Iterable[JobRow]) -> None:
        values = [{"_id": row.id, **{name: getattr(row, name) for name in _ROW_COLUMNS}} for row in rows]
        if values:
            statement = jobs.update().where(jobs.c.id == bindparam("_id"))
            self.connection.execute(statement.values({name: bindparam(name) for name in _ROW_COLUMNS}), values)

    def _fields(self, rows: Sequence[JobRow], stripped: set[int], created: set[int]) -> None:
        """Replace the fields of jobs whose payload changed; ``created`` rows (new in this batch) have none yet."""
        replaced = [row for row in rows if row.new_fields is not None]
        gone = sorted(({row.id for row in replaced} | stripped) - created)
        if gone:
            self.connection.execute(delete(job_fields).where(job_fields.c.job_pk.in_(gone)))
        if stripped - created:
            old = sorted(stripped - created)
            self.connection.execute(delete(job_events).where(job_events.c.job_pk.in_(old)))
        values = [
            {"job_pk": row.id, "key": key, "value_norm": value}
            for row in replaced
            for key, value in dict.fromkeys(row.new_fields or ())
        ]
        if values:
            self.connection.execute(insert_ignore(self.connection, job_fields), values)

    def events(self, entries: Sequence[Entry], rows: dict[JobKey, JobRow], stripped: set[int]) -> None:
        values = []
        for entry in entries:
            key = _key(entry)
            row = rows.get(key) if key is not None else None
            if row is not None and row.id in stripped:
                continue
            values.append(_event_row(entry, row.id if row is not None else None))
        if values:
            self.connection.execute(insert_ignore(self.connection, job_events), values)
        actions = _action_rows(entries)
        if actions:
            self.connection.execute(insert_ignore(self.connection, operator_actions), actions)


def write_batch(
    connection: Connection,
    entries: Sequence[Entry],
    *,
    archived: frozenset[str],
    legacy: bool,
    consumer: str,
) -> BatchResult:
    """Write ``entries`` on ``connection`` (inside its transaction); the caller commits, then acknowledges."""
    writer = _Writer(connection, archived, legacy)
    fresh = writer.new_entries(entries)
    rows, stripped = writer.jobs(fresh)
    writer.events(fresh, rows, stripped)
    if entries:
        last = max(entries, key=lambda entry: entry.order).stream_id
        mark = {"streamId": last, "archivedAt": int(time.time() * 1000)}
        upsert_meta(connection, f"consumer:{consumer}", json.dumps(mark))
    touched = {_key(entry) for entry in fresh if entry.touches_job}
    return BatchResult(
        events=len(fresh),
        jobs=len(touched),
        undecodable=sum(1 for entry in fresh if entry.event is None),
        duplicates=len(entries) - len(fresh),
    )
