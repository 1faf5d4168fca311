"""Retention: old rows deleted per state and per queue, in small batches, so that ingest keeps running.

Each kind of row has its own age (:class:`RetentionPolicy`): jobs by state (``completed``,
``dead``, ``deleted``; the states a job has not finished in are kept unless given an age), the
timeline ``events``, ``operator`` actions (the audit trail), ``logs``. The Node console's
``maintenance:config.retentionDays`` (PROTOCOL 10.4) is the default age. Rows are deleted oldest
first, at most ``batch`` (1,000) per transaction, walking an index by keyset (``(finished_at,
id)`` for jobs); a job's fields and events go with it. After each batch the cleanup rests
``rest`` (4) times as long as the batch took, so that it holds the database at most a fifth of
the time and archivers writing meanwhile keep most of their rate. On SQLite each batch takes the
write lock at its start (``BEGIN IMMEDIATE``: a transaction that read first could not get it
while an archiver writes), and the freed pages are then handed back to the file system
(``PRAGMA incremental_vacuum``), a few thousand pages per transaction.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import redis
from sqlalchemy import ColumnElement, Table, and_, delete, or_, select, text
from sqlalchemy.engine import Connection, Engine

from zenith_archive.schema import (
    ALL_STATES,
    FINAL_STATES,
    job_events,
    job_fields,
    jobs,
    legacy_job_archive,
    legacy_system_logs,
    logs,
    metadata,
    operator_actions,
)
from zenith_protocol import KeySpace, MaintenanceConfig, decode_maintenance_config, encode_maintenance_config

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_OPERATOR_DAYS",
    "DEFAULT_REST",
    "RETENTION_KINDS",
    "CleanupReport",
    "RetentionPolicy",
    "archive_size",
    "claim_cleanup_run",
    "cleanup",
    "maintenance_config",
    "record_cleanup_run",
]

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 1_000
DEFAULT_REST = 4.0
"""After each batch the cleanup waits this many times as long as the batch took."""
DEFAULT_OPERATOR_DAYS = 365.0
"""The audit trail is kept at least a year unless given its own age."""
RETENTION_KINDS: tuple[str, ...] = (*ALL_STATES, "events", "operator", "logs")
_DAY_MS = 86_400_000
_CAS_ATTEMPTS = 5
_VACUUM_PAGES = 2_000
Progress = Callable[[str, int], None]
"""Called after each batch with the kind of rows and how many of them are deleted so far."""


@dataclass(frozen=True)
class RetentionPolicy:
    """How many days each kind of row is kept.

    Args:
        default_days: the age of completed, dead and deleted jobs, events and logs that have
            none of their own (the Node console's ``retentionDays``).
        days: ages per kind (:data:`RETENTION_KINDS`); None or 0 keeps that kind forever.
            ``operator`` defaults to the larger of ``default_days`` and 365; ``waiting``,
            ``delayed``, ``active`` and ``failed`` jobs are kept unless given an age (measured
            from their last event).
        queues: ages per queue and job state, over ``days`` (``{"emails": {"completed": 1}}``).
    """

    default_days: float = 30.0
    days: Mapping[str, float | None] = field(default_factory=dict)
    queues: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.days) - set(RETENTION_KINDS)
        for ages in self.queues.values():
            unknown |= set(ages) - set(ALL_STATES)
        if unknown:
            raise ValueError(
                f"unknown retention kinds {sorted(unknown)}: ages are per job state {list(ALL_STATES)} "
                "or for events, operator and logs (per queue: job states only)"
            )

    @classmethod
    def from_maintenance(cls, config: MaintenanceConfig, **options: Any) -> RetentionPolicy:
        """The policy whose default age is the maintenance settings' ``retentionDays``."""
        return cls(default_days=float(config.retention_days), **options)

    def age_days(self, kind: str, queue: str | None = None) -> float | None:
        """Days ``kind`` rows (of ``queue``) are kept; None for ever."""
        if queue is not None and kind in self.queues.get(queue, {}):
            age = self.queues[queue][kind]
        elif kind in self.days:
            age = self.days[kind]
        elif kind in FINAL_STATES or kind in ("events", "logs"):
            age = self.default_days
        elif kind == "operator":
            age = max(self.default_days, DEFAULT_OPERATOR_DAYS) if self.default_days > 0 else None
        else:
            age = None
        return age if age is not None and age > 0 else None


@dataclass(frozen=True)
class CleanupReport:
    """Rows deleted per kind (``legacy_jobs``/``legacy_logs`` for the Node console's tables) and the size around it."""

    deleted: dict[str, int]
    size_before: int | None
    size_after: int | None

    @property
    def total(self) -> int:
        """All rows deleted."""
        return sum(self.deleted.values())


def _cutoff_ms(now_ms: int, days: float | None) -> int | None:
    return None if days is None else now_ms - int(days * _DAY_MS)


def _as_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).replace(tzinfo=None)


class _Deleter:
    """Deletes rows older than a cutoff, oldest first, in batches of their own transaction."""

    def __init__(self, engine: Engine, batch: int, progress: Progress | None, rest: float) -> None:
        self.engine = engine
        self.batch = batch
        self.progress = progress
        self.rest = rest
        self.deleted: dict[str, int] = {}

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One batch's transaction (the SQLite write lock taken at once), then the rest that follows it."""
        started = time.monotonic()
        with self.engine.connect() as connection:
            connection.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                yield connection
        if self.rest:
            time.sleep((time.monotonic() - started) * self.rest)

    def run(
        self,
        kind: str,
        table: Table,
        when: str,
        cutoff: Any,
        *where: ColumnElement[bool],
        children: tuple[Table, ...] = (),
    ) -> None:
        moment, key = table.c[when], table.c["id"]
        last: tuple[Any, Any] | None = None
        self.deleted.setdefault(kind, 0)
        while True:
            after = [] if last is None else [or_(moment > last[0], and_(moment == last[0], key > last[1]))]
            query = select(key, moment).where(moment < cutoff, *where, *after).order_by(moment, key).limit(self.batch)
            with self.transaction() as connection:
                found = connection.execute(query).all()
                if not found:
                    return
                ids = [row[0] for row in found]
                for child in children:
                    connection.execute(delete(child).where(child.c["job_pk"].in_(ids)))
                connection.execute(delete(table).where(key.in_(ids)))
            last = (found[-1][1], found[-1][0])
            self.deleted[kind] += len(ids)
            if self.progress is not None:
                self.progress(kind, self.deleted[kind])


def _job_states(deleter: _Deleter, policy: RetentionPolicy, now_ms: int) -> None:
    for state in ALL_STATES:
        when = "finished_at" if state in FINAL_STATES else "updated_at"
        own = sorted(queue for queue, ages in policy.queues.items() if state in ages)
        children = (job_fields, job_events)
        cutoff = _cutoff_ms(now_ms, policy.age_days(state))
        if cutoff is not None:
            deleter.run(state, jobs, when, cutoff, jobs.c.state == state, jobs.c.queue.not_in(own), children=children)
        for queue in own:
            cutoff = _cutoff_ms(now_ms, policy.age_days(state, queue))
            if cutoff is not None:
                deleter.run(state, jobs, when, cutoff, jobs.c.state == state, jobs.c.queue == queue, children=children)


def _legacy(deleter: _Deleter, policy: RetentionPolicy, now_ms: int) -> None:
    # The Node console kept every row for retentionDays: its "waiting" rows follow the default age.
    ages = {
        "completed": policy.age_days("completed"),
        "failed": policy.age_days("dead"),
        "waiting": policy.default_days,
    }
    for status, days in ages.items():
        cutoff = _cutoff_ms(now_ms, days if days is not None and days > 0 else None)
        if cutoff is not None:
            table = legacy_job_archive
            deleter.run("legacy_jobs", table, "archived_at", _as_datetime(cutoff), table.c.status == status)
    cutoff = _cutoff_ms(now_ms, policy.age_days("logs"))
    if cutoff is not None:
        deleter.run("legacy_logs", legacy_system_logs, "timestamp", _as_datetime(cutoff))


def _sqlite_file(engine: Engine) -> str | None:
    database = engine.url.database
    return database if engine.dialect.name == "sqlite" and database and database != ":memory:" else None


def _size_query(connection: Connection, tables: list[str]) -> Any:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        parts = " + ".join(f"coalesce(pg_total_relation_size(to_regclass('{name}')), 0)" for name in tables)
        return connection.execute(text(f"SELECT {parts}")).scalar()
    names = ", ".join(f"'{name}'" for name in tables)  # our own fixed table names
    return connection.execute(
        text(
            "SELECT sum(data_length + index_length) FROM information_schema.tables "
            f"WHERE table_schema = DATABASE() AND table_name IN ({names})"
        )
    ).scalar()


def archive_size(engine: Engine) -> int | None:
    """Bytes the archive takes: the SQLite file (with its WAL), or the tables and indexes on a server."""
    path = _sqlite_file(engine)
    if path is not None:
        return sum(os.path.getsize(name) for name in (path, f"{path}-wal") if os.path.exists(name))
    if engine.dialect.name == "sqlite":
        return None
    tables = [*metadata.tables, legacy_job_archive.name, legacy_system_logs.name]
    with engine.connect() as connection:
        size = _size_query(connection, tables)
    return int(size) if size is not None else None


def _reclaim_sqlite(deleter: _Deleter) -> None:
    """Hand the free pages back to the file system, a few thousand per transaction, then truncate the WAL."""
    left: int | None = None
    while True:
        with deleter.transaction() as connection:
            free = int(connection.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)
            if not free or (left is not None and free >= left):  # done, or nothing more can go
                break
            left = free
            cursor = connection.connection.cursor()
            try:  # the pragma frees a page per step: fetchall steps it to its end
                cursor.execute(f"PRAGMA incremental_vacuum({_VACUUM_PAGES})")
                cursor.fetchall()
            finally:
                cursor.close()
    with deleter.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def cleanup(
    engine: Engine,
    policy: RetentionPolicy,
    *,
    now_ms: int | None = None,
    batch: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    rest: float = DEFAULT_REST,
) -> CleanupReport:
    """Delete what ``policy`` says is too old, in batches; returns the counts and the archive's size around it.

    ``rest``: after each batch, wait this many times as long as it took (0: no pause).
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if rest < 0:
        raise ValueError(f"rest must be 0 or more, got {rest}")
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    size_before = archive_size(engine)
    deleter = _Deleter(engine, batch, progress, rest)
    _job_states(deleter, policy, now)
    for kind, table in (("events", job_events), ("operator", operator_actions), ("logs", logs)):
        cutoff = _cutoff_ms(now, policy.age_days(kind))
        if cutoff is not None:
            deleter.run(kind, table, "at", cutoff)
    _legacy(deleter, policy, now)
    if _sqlite_file(engine) is not None:
        _reclaim_sqlite(deleter)
    deleted = {kind: count for kind, count in deleter.deleted.items() if count}
    return CleanupReport(deleted=deleted, size_before=size_before, size_after=archive_size(engine))


def maintenance_config(client: redis.Redis, keyspace: KeySpace | None = None) -> MaintenanceConfig:
    """The maintenance settings in Redis (PROTOCOL 10.4); the defaults when the key is absent.

    Raises:
        ProtocolError: the key holds something that does not decode.
    """
    raw = client.get((keyspace or KeySpace()).maintenance_config())
    return MaintenanceConfig() if raw is None else decode_maintenance_config(raw)


def _set_last_run(
    client: redis.Redis, key: str, moment: int, wanted: Callable[[MaintenanceConfig], bool]
) -> MaintenanceConfig | None:
    """Set ``lastRun`` to ``moment`` if ``wanted(settings)`` (compare-and-set); the settings set, else None."""
    for _ in range(_CAS_ATTEMPTS):
        with client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                raw = pipe.get(key)
                config = MaintenanceConfig() if raw is None else decode_maintenance_config(raw)
                if not wanted(config):
                    pipe.unwatch()
                    return None
                updated = config.model_copy(update={"last_run_ms": moment})
                pipe.multi()
                pipe.set(key, encode_maintenance_config(updated))
                pipe.execute()
                return updated
            except redis.WatchError:
                continue
    logger.warning("maintenance settings at %s changed under every attempt; lastRun not recorded", key)
    return None


def record_cleanup_run(client: redis.Redis, keyspace: KeySpace | None = None, *, at_ms: int | None = None) -> bool:
    """Set ``lastRun`` in the maintenance settings (compare-and-set); False when other writers kept winning."""
    key = (keyspace or KeySpace()).maintenance_config()
    moment = at_ms if at_ms is not None else int(time.time() * 1000)
    return _set_last_run(client, key, moment, lambda config: True) is not None


def claim_cleanup_run(
    client: redis.Redis, keyspace: KeySpace | None = None, *, now_ms: int | None = None, every_ms: int = _DAY_MS
) -> MaintenanceConfig | None:
    """The settings, with ``lastRun`` moved to now, if ``autoCleanup`` is on and the last run is ``every_ms`` old.

    None when automatic cleanup is off or not due. Of the archivers asking at once, one gets the
    settings (a compare-and-set on the key): the run is theirs.

    Raises:
        ProtocolError: the key holds something that does not decode.
    """
    key = (keyspace or KeySpace()).maintenance_config()
    now = now_ms if now_ms is not None else int(time.time() * 1000)

    def due(config: MaintenanceConfig) -> bool:
        return config.auto_cleanup and (config.last_run_ms is None or now - config.last_run_ms >= every_ms)

    return _set_last_run(client, key, now, due)
