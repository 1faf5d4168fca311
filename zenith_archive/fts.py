"""Full-text search over ``zenith_jobs.search_text``: the per-dialect DDL, in one place.

- SQLite: an FTS5 external-content table :data:`SQLITE_FTS_TABLE` (rowid = ``zenith_jobs.id``)
  kept in step by triggers; query it with ``zenith_jobs_fts MATCH :terms``.
- PostgreSQL: a generated ``tsvector`` column :data:`PG_TSV_COLUMN`
  (``to_tsvector('simple', search_text)``) with a GIN index; query it with
  ``search_tsv @@ websearch_to_tsquery('simple', :terms)``.
- MySQL/MariaDB: a FULLTEXT index on ``search_text``; query it with
  ``MATCH (search_text) AGAINST (:terms IN BOOLEAN MODE)``.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, Table, Text
from sqlalchemy.engine import Connection

__all__ = [
    "FTS_CONFIG",
    "MYSQL_FULLTEXT_INDEX",
    "PG_TSV_COLUMN",
    "PG_TSV_INDEX",
    "SQLITE_FTS_TABLE",
    "create_fts",
    "drop_fts",
    "sqlite_fts",
]

SQLITE_FTS_TABLE = "zenith_jobs_fts"
PG_TSV_COLUMN = "search_tsv"
PG_TSV_INDEX = "ix_zenith_jobs_search_tsv"
MYSQL_FULLTEXT_INDEX = "ix_zenith_jobs_search_text"
FTS_CONFIG = "simple"
"""The PostgreSQL text search configuration: no stemming, no stop words, like FTS5's unicode61."""

sqlite_fts = Table(
    SQLITE_FTS_TABLE,
    MetaData(),  # not the archive's metadata: create_all must never make it a plain table
    Column("rowid", Integer, primary_key=True),
    Column("search_text", Text),
)
"""The SQLite FTS5 table, for building queries (``sqlite_fts.c.rowid`` joins ``zenith_jobs.id``)."""

_SQLITE_CREATE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {SQLITE_FTS_TABLE} USING fts5("
    "search_text, content='zenith_jobs', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER IF NOT EXISTS {SQLITE_FTS_TABLE}_ai AFTER INSERT ON zenith_jobs BEGIN "
    f"INSERT INTO {SQLITE_FTS_TABLE}(rowid, search_text) VALUES (new.id, new.search_text); END",
    f"CREATE TRIGGER IF NOT EXISTS {SQLITE_FTS_TABLE}_ad AFTER DELETE ON zenith_jobs BEGIN "
    f"INSERT INTO {SQLITE_FTS_TABLE}({SQLITE_FTS_TABLE}, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    f"CREATE TRIGGER IF NOT EXISTS {SQLITE_FTS_TABLE}_au AFTER UPDATE OF search_text ON zenith_jobs BEGIN "
    f"INSERT INTO {SQLITE_FTS_TABLE}({SQLITE_FTS_TABLE}, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    f"INSERT INTO {SQLITE_FTS_TABLE}(rowid, search_text) VALUES (new.id, new.search_text); END",
    # Jobs archived before the index existed (none on a fresh archive).
    f"INSERT INTO {SQLITE_FTS_TABLE}({SQLITE_FTS_TABLE}) VALUES ('rebuild')",
)
_SQLITE_DROP = (
    f"DROP TRIGGER IF EXISTS {SQLITE_FTS_TABLE}_ai",
    f"DROP TRIGGER IF EXISTS {SQLITE_FTS_TABLE}_ad",
    f"DROP TRIGGER IF EXISTS {SQLITE_FTS_TABLE}_au",
    f"DROP TABLE IF EXISTS {SQLITE_FTS_TABLE}",
)
_PG_CREATE = (
    f"ALTER TABLE zenith_jobs ADD COLUMN {PG_TSV_COLUMN} tsvector "
    f"GENERATED ALWAYS AS (to_tsvector('{FTS_CONFIG}', coalesce(search_text, ''))) STORED",
    f"CREATE INDEX {PG_TSV_INDEX} ON zenith_jobs USING GIN ({PG_TSV_COLUMN})",
)
_PG_DROP = (
    f"DROP INDEX IF EXISTS {PG_TSV_INDEX}",
    f"ALTER TABLE zenith_jobs DROP COLUMN IF EXISTS {PG_TSV_COLUMN}",
)
_MYSQL_CREATE = (f"CREATE FULLTEXT INDEX {MYSQL_FULLTEXT_INDEX} ON zenith_jobs (search_text)",)
_MYSQL_DROP = (f"DROP INDEX {MYSQL_FULLTEXT_INDEX} ON zenith_jobs",)


def _statements(dialect: str, *, create: bool) -> tuple[str, ...]:
    if dialect == "sqlite":
        return _SQLITE_CREATE if create else _SQLITE_DROP
    if dialect == "postgresql":
        return _PG_CREATE if create else _PG_DROP
    if dialect in ("mysql", "mariadb"):
        return _MYSQL_CREATE if create else _MYSQL_DROP
    raise ValueError(f"the archive runs on SQLite, PostgreSQL and MySQL/MariaDB, not on {dialect!r}")


def create_fts(connection: Connection) -> None:
    """Create the dialect's full-text index over ``zenith_jobs.search_text`` (the table must exist)."""
    for statement in _statements(connection.dialect.name, create=True):
        connection.exec_driver_sql(statement)


def drop_fts(connection: Connection) -> None:
    """Remove what :func:`create_fts` made."""
    for statement in _statements(connection.dialect.name, create=False):
        connection.exec_driver_sql(statement)
