"""The archive's tables (SQLAlchemy 2 Core), the same on SQLite, PostgreSQL and MySQL/MariaDB.

Times are epoch milliseconds (BIGINT) so that every dialect compares and indexes them alike.
Identifier columns (queue, job id, state, keys) compare byte for byte on every dialect: MySQL
gets a binary collation for them, since its default one would make ``Abc`` and ``abc`` the same
job. Full-text search lives in :mod:`zenith_archive.fts` (per-dialect DDL, not part of
:data:`metadata`).

The two legacy tables of the Node console (``flux_job_archive``, ``flux_system_logs``) are
described here too: the first migration creates them when missing and never alters them, so the
Node console keeps reading and writing them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine

__all__ = [
    "ALL_STATES",
    "FINAL_STATES",
    "LEGACY_STATUS",
    "MAX_FIELDS_PER_JOB",
    "MAX_FIELD_KEY_CHARS",
    "MAX_FIELD_VALUE_CHARS",
    "State",
    "archive_meta",
    "job_events",
    "job_fields",
    "jobs",
    "legacy_job_archive",
    "legacy_metadata",
    "legacy_system_logs",
    "logs",
    "metadata",
    "operator_actions",
]

MAX_FIELDS_PER_JOB = 64
"""At most this many ``zenith_job_fields`` rows per job (the first ones in payload order)."""
MAX_FIELD_KEY_CHARS = 128
"""Field key paths (``a.b.c``) longer than this are not indexed."""
MAX_FIELD_VALUE_CHARS = 256
"""Normalised field values are cut to this many characters."""


class State:
    """The values of ``zenith_jobs.state``."""

    WAITING = "waiting"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    """An attempt failed and the job will be retried (or has not been decided yet)."""
    DEAD = "dead"
    """Out of attempts: the job sits on the dead-letter list."""
    DELETED = "deleted"


ALL_STATES: tuple[str, ...] = (
    State.WAITING,
    State.DELAYED,
    State.ACTIVE,
    State.COMPLETED,
    State.FAILED,
    State.DEAD,
    State.DELETED,
)
FINAL_STATES: frozenset[str] = frozenset({State.COMPLETED, State.DEAD, State.DELETED})
"""States a job does not leave on its own (an operator may still retry a dead or deleted one)."""
LEGACY_STATUS: dict[str, str] = {State.COMPLETED: "completed", State.DEAD: "failed", State.WAITING: "waiting"}
"""``flux_job_archive.status`` for the states the Node console archived."""

_MYSQL = ("mysql", "mariadb")


def _ident(length: int) -> TypeEngine[str]:
    """A VARCHAR that compares byte for byte on every dialect (binary collation on MySQL)."""
    binary = mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin")
    return String(length).with_variant(binary, *_MYSQL)


def _long_text() -> TypeEngine[str]:
    """TEXT, MEDIUMTEXT on MySQL (whose TEXT stops at 64 KiB)."""
    return Text().with_variant(mysql.MEDIUMTEXT(charset="utf8mb4"), *_MYSQL)


def _pk() -> TypeEngine[int]:
    """A 64-bit key; INTEGER on SQLite, where only ``INTEGER PRIMARY KEY`` is the rowid."""
    return BigInteger().with_variant(Integer(), "sqlite")


_TABLE_OPTIONS: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)
"""Zenith's own tables."""

jobs = Table(
    "zenith_jobs",
    metadata,
    Column("id", _pk(), primary_key=True, autoincrement=True),
    Column("queue", _ident(255), nullable=False),
    Column("job_id", _ident(255), nullable=False),
    Column("name", _ident(255)),
    Column("state", _ident(32), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("enqueued_at", BigInteger),
    Column("started_at", BigInteger),
    Column("finished_at", BigInteger),
    Column("updated_at", BigInteger),
    Column("duration_ms", Float),
    Column("worker_id", _ident(255)),
    Column("error", _long_text()),
    Column("payload", _long_text()),
    Column("search_text", _long_text()),
    Column("last_stream_id", _ident(64)),
    UniqueConstraint("queue", "job_id", name="uq_zenith_jobs_queue_job_id"),
    Index("ix_zenith_jobs_queue_state_updated", "queue", "state", "updated_at", "id"),
    Index("ix_zenith_jobs_state_finished", "state", "finished_at", "id"),
    Index("ix_zenith_jobs_name", "name"),
    Index("ix_zenith_jobs_updated", "updated_at", "id"),
    **_TABLE_OPTIONS,
)
"""One row per job: its current state, times, last error and (redacted) payload.

``last_stream_id`` is the stream entry id of the newest event applied to the row: an older
event delivered late (to another archiver, or again) fills gaps but never sets the state back.
"""

job_events = Table(
    "zenith_job_events",
    metadata,
    Column("id", _pk(), primary_key=True, autoincrement=True),
    Column("stream_id", _ident(64), nullable=False),
    Column("job_pk", _pk(), ForeignKey("zenith_jobs.id", ondelete="CASCADE")),
    Column("queue", _ident(255), nullable=False),
    Column("job_id", _ident(255)),
    Column("type", _ident(32), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("attempt", Integer),
    Column("worker_id", _ident(255)),
    Column("actor", _ident(255)),
    Column("error", _long_text()),
    Column("data", _long_text()),
    UniqueConstraint("stream_id", name="uq_zenith_job_events_stream_id"),
    Index("ix_zenith_job_events_job", "job_pk", "at", "id"),
    Index("ix_zenith_job_events_queue_at", "queue", "at"),
    Index("ix_zenith_job_events_at", "at", "id"),
    **_TABLE_OPTIONS,
)
"""Every lifecycle event, keyed by its stream entry id (so redelivery is harmless).

``type`` is the event's type, or ``undecodable`` for an entry that did not decode (``data``
then holds its raw text). ``data`` is the (redacted) event JSON.
"""

job_fields = Table(
    "zenith_job_fields",
    metadata,
    Column("job_pk", _pk(), ForeignKey("zenith_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("key", _ident(MAX_FIELD_KEY_CHARS), nullable=False),
    Column("value_norm", _ident(MAX_FIELD_VALUE_CHARS), nullable=False),
    PrimaryKeyConstraint("job_pk", "key", "value_norm", name="pk_zenith_job_fields"),
    Index("ix_zenith_job_fields_lookup", "key", "value_norm", "job_pk"),
    **_TABLE_OPTIONS,
)
"""The job's properties flattened to ``key path -> normalised value``: what makes ``key:value`` indexable."""

logs = Table(
    "zenith_logs",
    metadata,
    Column("id", _pk(), primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("level", _ident(16), nullable=False),
    Column("message", _long_text(), nullable=False),
    Column("worker_id", _ident(255)),
    Column("queue", _ident(255)),
    Column("job_id", _ident(255)),
    Index("ix_zenith_logs_at", "at", "id"),
    Index("ix_zenith_logs_queue_at", "queue", "at"),
    Index("ix_zenith_logs_worker_at", "worker_id", "at"),
    **_TABLE_OPTIONS,
)
"""Live log lines (PROTOCOL 6.3) the archiver was given."""

operator_actions = Table(
    "zenith_operator_actions",
    metadata,
    Column("id", _pk(), primary_key=True, autoincrement=True),
    Column("stream_id", _ident(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", _ident(255)),
    Column("action", _ident(64), nullable=False),
    Column("queue", _ident(255), nullable=False),
    Column("count", Integer),
    Column("job_id", _ident(255)),
    UniqueConstraint("stream_id", name="uq_zenith_operator_actions_stream_id"),
    Index("ix_zenith_operator_actions_at", "at", "id"),
    Index("ix_zenith_operator_actions_queue_at", "queue", "at"),
    **_TABLE_OPTIONS,
)
"""The audit trail: ``operator`` events, and per-job retries, deletes and promotions an actor caused."""

archive_meta = Table(
    "zenith_archive_meta",
    metadata,
    Column("key", _ident(64), primary_key=True),
    Column("value", Text),
    **_TABLE_OPTIONS,
)
"""The archive's own settings and marks (``key -> value``)."""

legacy_metadata = MetaData()
"""The Node console's tables (PROTOCOL 11), as its archive created them."""

legacy_job_archive = Table(
    "flux_job_archive",
    legacy_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(64), nullable=False),
    Column("queue", String(128), nullable=False),
    Column("status", String(20), nullable=False),
    Column("payload", Text),
    Column("error", Text),
    Column("created_at", DateTime),
    Column("archived_at", DateTime),
    Index("idx_flux_job_archive_queue_archived", "queue", "archived_at"),
    Index("idx_flux_job_archive_archived", "archived_at"),
    **_TABLE_OPTIONS,
)
"""Jobs the Node console archived; the archiver adds a row for each job that completes or dies."""

legacy_system_logs = Table(
    "flux_system_logs",
    legacy_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("level", String(20)),
    Column("message", Text),
    Column("worker_id", String(128)),
    Column("queue", String(128)),
    Column("timestamp", DateTime),
    Index("idx_flux_system_logs_worker", "worker_id"),
    Index("idx_flux_system_logs_queue", "queue"),
    Index("idx_flux_system_logs_level", "level"),
    Index("idx_flux_system_logs_timestamp", "timestamp"),
    **_TABLE_OPTIONS,
)
"""Log lines the Node console archived; ``zenith archive run --logs`` adds the lines it archives."""
