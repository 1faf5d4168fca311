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

from sqlalchemy import Select, String, Table, and_, bindparam, delete, func, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert, Update

from zenith_archive._bulk import BulkStatement, bulk_statement
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

__all__ = ["BatchResult", "Plan", "insert_ignore", "plan_batch", "upsert_meta", "write_batch"]

_ROW_COLUMNS = (  # in the table's order, which is the order the compiled INSERT and UPDATE bind them
    "name",
    "state",
    "attempts",
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
_EVENT_COLUMNS = (
    "stream_id",
    "job_pk",
    "queue",
    "job_id",
    "type",
    "at",
    "attempt",
    "worker_id",
    "actor",
    "error",
    "data",
)
_ACTION_COLUMNS = ("stream_id", "at", "actor", "action", "queue", "count", "job_id")
_LEGACY_COLUMNS = ("job_id", "queue", "status", "payload", "error", "created_at", "archived_at")
_FIELD_COLUMNS = ("job_pk", "key", "value_norm")
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


def _insert(connection: Connection, table: Table, names: tuple[str, ...]) -> BulkStatement:
    """``insert_ignore`` into ``table``, compiled once, for rows of ``names``."""
    return bulk_statement(connection, f"insert:{table.name}", lambda c: insert_ignore(c, table), names)


def _legacy_insert(_: Connection) -> Insert:
    """A plain INSERT: the Node console's table has no unique key to skip on."""
    return legacy_job_archive.insert()


def _update_jobs(connection: Connection) -> BulkStatement:
    """The UPDATE of a job row's columns, for rows of ``(*_ROW_COLUMNS, id)``."""

    def build(_: Connection) -> Update:
        statement = jobs.update().where(jobs.c.id == bindparam("_id"))
        return statement.values({name: bindparam(name) for name in _ROW_COLUMNS})

    return bulk_statement(connection, "update:zenith_jobs", build, (*_ROW_COLUMNS, "_id"))


def _of_keys(connection: Connection, query: Select[Any], keys: Collection[JobKey]) -> Select[Any]:
    """``query`` narrowed to the jobs rows of ``keys`` (and perhaps a few more: callers check the key).

    PostgreSQL gets the keys as a table to join, so each key is one probe of the (queue, job_id)
    index: with ``queue IN (...) AND job_id IN (...)`` its planner may scan every row of those
    queues and filter the ids, which it did once retention had deleted many rows (stale statistics).
    """
    queues = sorted({queue for queue, _ in keys})
    ids = sorted({job_id for _, job_id in keys})
    if connection.dialect.name != "postgresql":
        return query.where(jobs.c.queue.in_(queues), jobs.c.job_id.in_(ids))
    pairs = sorted(keys)
    texts = postgresql.ARRAY(String)
    wanted = (
        func.unnest(
            bindparam("key_queues", [queue for queue, _ in pairs], type_=texts),
            bindparam("key_ids", [job_id for _, job_id in pairs], type_=texts),
        )
        .table_valued("queue", "job_id", name="wanted")
        .render_derived()
    )
    return query.join(wanted, and_(jobs.c.queue == wanted.c.queue, jobs.c.job_id == wanted.c.job_id))


def _lock_rows(connection: Connection, keys: Collection[JobKey]) -> dict[JobKey, JobRow]:
    """The rows of ``keys`` that exist, locked until the transaction ends."""
    if not keys:
        return {}
    columns = (jobs.c.id, jobs.c.queue, jobs.c.job_id, *(jobs.c[name] for name in _ROW_COLUMNS))
    query = _of_keys(connection, select(*columns), keys).order_by(jobs.c.id).with_for_update(of=jobs)
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
    query = _of_keys(connection, select(jobs.c.queue, jobs.c.job_id), keys)
    found = {(queue, job_id) for queue, job_id in connection.execute(query)}
    return found & set(keys)


def _create_rows(connection: Connection, rows: dict[JobKey, JobRow]) -> bool:
    """Insert the new jobs' rows whole (one written row, instead of an empty one and an update).

    On SQLite the batch holds the database's only write lock, so the rows get their ids here
    (after the largest one) and need no query to find them; returns whether it gave them ids.
    """
    # In key order, so that two archivers creating the same jobs wait for each other instead of deadlocking.
    ordered = sorted(rows.items())
    if not rows:
        return True
    if connection.dialect.name != "sqlite":
        values = [(queue, job_id, *_columns(row)) for (queue, job_id), row in ordered]
        _insert(connection, jobs, ("queue", "job_id", *_ROW_COLUMNS)).run(connection, values)
        return False
    last = connection.execute(select(func.max(jobs.c.id))).scalar() or 0
    for offset, (_, row) in enumerate(ordered, start=1):
        row.id = last + offset
    values = [(row.id, queue, job_id, *_columns(row)) for (queue, job_id), row in ordered]
    # A plain INSERT: the write lock held since the existence check means no row can conflict.
    statement = bulk_statement(
        connection, "insert:zenith_jobs:ids", lambda _: jobs.insert(), ("id", "queue", "job_id", *_ROW_COLUMNS)
    )
    statement.run(connection, values)
    return True


def _columns(row: JobRow) -> tuple[Any, ...]:
    return (
        row.name,
        row.state,
        row.attempts,
        row.enqueued_at,
        row.started_at,
        row.finished_at,
        row.updated_at,
        row.duration_ms,
        row.worker_id,
        row.error,
        row.payload,
        row.search_text,
        row.last_stream_id,
    )


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


def _legacy_rows(row: JobRow, key: JobKey, archived: Collection[str], enqueued: list[Entry]) -> list[tuple[Any, ...]]:
    """``flux_job_archive`` rows, as the Node console wrote them, for the job's archived transitions."""
    transitions = [(entry, LEGACY_STATUS[State.WAITING]) for entry in enqueued if State.WAITING in archived]
    transitions += [
        (entry, LEGACY_STATUS[state]) for entry, state in row.finals if state in archived and state in LEGACY_STATUS
    ]
    return [
        (
            key[1][:64],
            key[0][:128],
            status,
            (entry.job.payload if entry.job is not None else None) or row.payload,
            row.error if status == LEGACY_STATUS[State.DEAD] else None,
            _ms_datetime(row.enqueued_at),
            _ms_datetime(entry.event.timestamp if entry.event is not None else None),
        )
        for entry, status in transitions
    ]


def _event_row(entry: Entry, job_pk: int | None) -> tuple[Any, ...]:
    """A ``zenith_job_events`` row, in the order of ``_EVENT_COLUMNS``."""
    event = entry.event
    key = entry.key
    queue, job_id = key if key is not None else (entry.stored_queue, None)
    if event is None:
        at, attempt, worker_id, actor, error = entry.order[0], None, None, None, clean(entry.reason)
    else:
        at, attempt, error = event.timestamp, small_int(event.attempt), clean(event.error)
        worker_id, actor = clean(event.worker_id, 255), clean(event.actor, 255)
    return (
        entry.stream_id,
        job_pk,
        queue,
        job_id,
        entry.type[:32],
        at,
        attempt,
        worker_id,
        actor,
        error,
        clean(entry.data),
    )


def _action_rows(entries: Iterable[Entry]) -> list[tuple[Any, ...]]:
    """``zenith_operator_actions`` rows, in the order of ``_ACTION_COLUMNS``."""
    rows = []
    for entry in entries:
        action = entry.operator_action()
        if action is not None and entry.event is not None:
            key = entry.key
            rows.append(
                (
                    entry.stream_id,
                    entry.event.timestamp,
                    clean(entry.event.actor, 255),
                    clean(action[0], 64) or "",
                    entry.stored_queue,
                    small_int(action[1]),
                    key[1] if key is not None else None,
                )
            )
    return rows


def _merge_job(row: JobRow, job_entries: list[Entry], archived: frozenset[str]) -> None:
    """``merge``, then the payload dropped when the job ended in a state that is not archived in full."""
    dropped_before = row.state in FINAL_STATES and row.state not in archived
    merge(row, job_entries, skip_fill=dropped_before)
    if row.state in FINAL_STATES and row.state not in archived:
        row.payload = row.search_text = None
        row.new_fields = None


@dataclass
class Plan:
    """A batch worked out before its transaction, so that less of it is done while holding locks.

    ``entries``: in stream order, each once; ``per_job``: each job's entries that change its row;
    ``linked``: every job an entry names; ``new_rows``: each job's row as it would be created.
    """

    entries: list[Entry]
    per_job: dict[JobKey, list[Entry]]
    linked: set[JobKey]
    new_rows: dict[JobKey, JobRow]


def plan_batch(entries: Iterable[Entry], archived: frozenset[str]) -> Plan:
    """The :class:`Plan` of ``entries`` (pure: it reads no database)."""
    unique: dict[str, Entry] = {}
    for entry in entries:
        unique.setdefault(entry.stream_id, entry)
    ordered = sorted(unique.values(), key=lambda entry: entry.order)
    per_job: dict[JobKey, list[Entry]] = defaultdict(list)
    linked: set[JobKey] = set()
    for entry in ordered:
        key = entry.key
        if key is None:
            continue
        linked.add(key)
        if entry.touches_job:
            per_job[key].append(entry)
    new_rows: dict[JobKey, JobRow] = {}
    for key, job_entries in per_job.items():
        row = new_rows[key] = JobRow(id=0, state=State.WAITING, attempts=0)
        _merge_job(row, job_entries, archived)
    return Plan(ordered, dict(per_job), linked, new_rows)


class _Writer:
    """The steps of one batch, on one connection inside its transaction."""

    def __init__(self, connection: Connection, archived: frozenset[str], legacy: bool) -> None:
        self.connection = connection
        self.archived = archived
        self.legacy = legacy

    def new_entries(self, entries: Sequence[Entry]) -> list[Entry]:
        """``entries`` less those the archive holds already."""
        ids = [entry.stream_id for entry in entries]
        query = select(job_events.c.stream_id).where(job_events.c.stream_id.in_(ids))
        seen = set(self.connection.execute(query).scalars())
        return [entry for entry in entries if entry.stream_id not in seen]

    def jobs(self, plan: Plan) -> tuple[dict[JobKey, JobRow], set[int]]:
        """Brings every job the plan touches up to date; returns the rows and the ids of stripped jobs."""
        per_job, linked = plan.per_job, plan.linked
        made, numbered = self._new_rows(plan)
        if numbered:  # the new rows have their ids: only the others are read
            rows = _lock_rows(self.connection, linked - made.keys())
            rows.update(made)
            created = set(made)
        else:
            rows = _lock_rows(self.connection, linked)
            created = _adopt(rows, made)
        stripped: set[int] = set()
        legacy: list[tuple[Any, ...]] = []
        for key, job_entries in per_job.items():
            row = rows.get(key)
            if row is None:  # MySQL's PAD SPACE collations make "a " and "a" the same key: the first one wins
                logger.warning("job %r of queue %r matches another job's row; its events are kept unlinked", *key[::-1])
                continue
            if key not in created:
                _merge_job(row, job_entries, self.archived)
            if row.state in FINAL_STATES and row.state not in self.archived:
                stripped.add(row.id)
            if self.legacy:
                enqueued = [entry for entry in job_entries if entry.type == "enqueued"]
                legacy += _legacy_rows(row, key, self.archived, enqueued)
        self._update([rows[key] for key in per_job if key in rows and key not in created])
        self._fields([rows[key] for key in per_job if key in rows], stripped, {rows[key].id for key in created})
        if legacy:
            statement = bulk_statement(self.connection, "insert:legacy", _legacy_insert, _LEGACY_COLUMNS)
            statement.run(self.connection, legacy)
        return rows, stripped

    def _new_rows(self, plan: Plan) -> tuple[dict[JobKey, JobRow], bool]:
        """Create the rows of jobs the archive does not hold yet, brought up to date.

        Returns them, and whether they have their ids already (see :func:`_create_rows`).
        """
        missing = plan.per_job.keys() - _existing(self.connection, plan.per_job.keys())
        made = {key: plan.new_rows[key] for key in missing}
        return made, _create_rows(self.connection, made)

    def _update(self, rows: Iterable[JobRow]) -> None:
        values = [(*_columns(row), row.id) for row in rows]
        _update_jobs(self.connection).run(self.connection, values)

    def _fields(self, rows: Sequence[JobRow], stripped: set[int], created: set[int]) -> None:
        """Replace the fields of jobs whose payload changed; ``created`` rows (new in this batch) have none yet."""
        replaced = [row for row in rows if row.new_fields is not None]
        gone = sorted(({row.id for row in replaced} | stripped) - created)
        if gone:
            self.connection.execute(delete(job_fields).where(job_fields.c.job_pk.in_(gone)))
        if stripped - created:
            old = sorted(stripped - created)
            self.connection.execute(delete(job_events).where(job_events.c.job_pk.in_(old)))
        values = [(row.id, key, value) for row in replaced for key, value in dict.fromkeys(row.new_fields or ())]
        _insert(self.connection, job_fields, _FIELD_COLUMNS).run(self.connection, values)

    def events(self, entries: Sequence[Entry], rows: dict[JobKey, JobRow], stripped: set[int]) -> None:
        values = []
        for entry in entries:
            key = entry.key
            row = rows.get(key) if key is not None else None
            if row is not None and row.id in stripped:
                continue
            values.append(_event_row(entry, row.id if row is not None else None))
        _insert(self.connection, job_events, _EVENT_COLUMNS).run(self.connection, values)
        _insert(self.connection, operator_actions, _ACTION_COLUMNS).run(self.connection, _action_rows(entries))


def write_batch(
    connection: Connection,
    entries: Sequence[Entry],
    *,
    archived: frozenset[str],
    legacy: bool,
    consumer: str,
    plan: Plan | None = None,
) -> BatchResult:
    """Write ``entries`` on ``connection`` (inside its transaction); the caller commits, then acknowledges.

    ``plan``: :func:`plan_batch` of ``entries``, worked out before the transaction began; it is
    used unless some of the entries turn out to be archived already.
    """
    writer = _Writer(connection, archived, legacy)
    if plan is None:
        plan = plan_batch(entries, archived)
    fresh = writer.new_entries(plan.entries)
    if len(fresh) != len(plan.entries):  # a batch delivered again: only what the archive lacks
        plan = plan_batch(fresh, archived)
    rows, stripped = writer.jobs(plan)
    writer.events(plan.entries, rows, stripped)
    if entries:
        last = max(entries, key=lambda entry: entry.order).stream_id
        mark = {"streamId": last, "archivedAt": int(time.time() * 1000)}
        upsert_meta(connection, f"consumer:{consumer}", json.dumps(mark))
    return BatchResult(
        events=len(plan.entries),
        jobs=len(plan.per_job),
        undecodable=sum(1 for entry in plan.entries if entry.event is None),
        duplicates=len(entries) - len(plan.entries),
    )
