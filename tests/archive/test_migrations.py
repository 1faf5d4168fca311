"""Migrations: a new archive, an archive the Node console made (its two tables kept), and running twice."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from zenith_archive import DEFAULT_SQLITE_PATH, connect, default_url, migrate
from zenith_archive.migrations import _config, head_revision
from zenith_archive.schema import legacy_metadata, metadata
from zenith_protocol import ConfigError

# The tables as the Node console's archive created them, per dialect.
NODE_DDL = {
    "sqlite": [
        "CREATE TABLE flux_job_archive (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id VARCHAR(64) NOT NULL, "
        "queue VARCHAR(128) NOT NULL, status VARCHAR(20) NOT NULL, payload TEXT NOT NULL, error TEXT, "
        "created_at DATETIME, archived_at DATETIME DEFAULT CURRENT_TIMESTAMP)",
        "CREATE INDEX idx_flux_job_archive_queue_archived_at ON flux_job_archive (queue, archived_at)",
        "CREATE INDEX idx_flux_job_archive_archived_at ON flux_job_archive (archived_at)",
        "CREATE TABLE flux_system_logs (id INTEGER PRIMARY KEY AUTOINCREMENT, level VARCHAR(20) NOT NULL, "
        "message TEXT NOT NULL, worker_id VARCHAR(128) NOT NULL, queue VARCHAR(128), "
        "timestamp DATETIME DEFAULT CURRENT_TIMESTAMP)",
        "CREATE INDEX idx_flux_system_logs_worker_id ON flux_system_logs (worker_id)",
        "CREATE INDEX idx_flux_system_logs_timestamp ON flux_system_logs (timestamp)",
    ],
    "postgresql": [
        "CREATE TABLE flux_job_archive (id SERIAL PRIMARY KEY, job_id VARCHAR(64) NOT NULL, "
        "queue VARCHAR(128) NOT NULL, status VARCHAR(20) NOT NULL, payload TEXT NOT NULL, error TEXT, "
        "created_at TIMESTAMP, archived_at TIMESTAMP DEFAULT NOW())",
        "CREATE INDEX idx_flux_job_archive_queue_archived_at ON flux_job_archive (queue, archived_at)",
        "CREATE TABLE flux_system_logs (id SERIAL PRIMARY KEY, level VARCHAR(20) NOT NULL, message TEXT NOT NULL, "
        "worker_id VARCHAR(128) NOT NULL, queue VARCHAR(128), timestamp TIMESTAMP DEFAULT NOW())",
        "CREATE INDEX idx_flux_system_logs_worker_id ON flux_system_logs (worker_id)",
    ],
    "mariadb": [
        "CREATE TABLE flux_job_archive (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, job_id VARCHAR(64) NOT NULL, "
        "queue VARCHAR(128) NOT NULL, status VARCHAR(20) NOT NULL, payload TEXT NOT NULL, error TEXT NULL, "
        "created_at TIMESTAMP NULL, archived_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, "
        "INDEX idx_queue_archived (queue, archived_at), INDEX idx_archived_at (archived_at))",
        "CREATE TABLE flux_system_logs (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, level VARCHAR(20) NOT NULL, "
        "message TEXT NOT NULL, worker_id VARCHAR(128) NOT NULL, queue VARCHAR(128) NULL, "
        "timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP, INDEX idx_worker_id (worker_id), INDEX idx_queue (queue))",
    ],
}
NODE_INSERT_JOB = (
    "INSERT INTO flux_job_archive (job_id, queue, status, payload, error, created_at, archived_at) "
    "VALUES (:job_id, :queue, :status, :payload, :error, :created_at, :archived_at)"
)
NODE_INSERT_LOG = (
    "INSERT INTO flux_system_logs (level, message, worker_id, queue, timestamp) "
    "VALUES (:level, :message, :worker_id, :queue, :timestamp)"
)
NODE_SELECT = (
    "SELECT job_id, queue, status, payload, error FROM flux_job_archive "
    "WHERE queue = :queue AND payload LIKE :like ORDER BY archived_at DESC"
)
WHEN = datetime(2026, 1, 1, 12, 0, 0)


def _when(dialect: str) -> datetime | str:
    """WHEN as a bound parameter: SQLite gets it as text (Python 3.12 deprecated its datetime adapter)."""
    return WHEN.isoformat(sep=" ") if dialect == "sqlite" else WHEN


def _node_archive(engine: Engine, dialect: str) -> None:
    """The two tables, with rows, as the Node console left them (on SQLite: a file without our pragmas)."""
    if dialect == "sqlite":
        path = engine.url.database
        assert path is not None
        raw = sqlite3.connect(path)
        for statement in NODE_DDL["sqlite"]:
            raw.execute(statement)
        raw.commit()
        raw.close()
    else:
        with engine.begin() as connection:
            for statement in NODE_DDL[dialect]:
                connection.execute(text(statement))
    with engine.begin() as connection:
        for number in range(3):
            connection.execute(
                text(NODE_INSERT_JOB),
                {
                    "job_id": f"node-{number}",
                    "queue": "emails",
                    "status": "completed",
                    "payload": f'{{"id":"node-{number}","data":"{{}}"}}',
                    "error": None,
                    "created_at": _when(dialect),
                    "archived_at": _when(dialect),
                },
            )
        connection.execute(
            text(NODE_INSERT_LOG),
            {"level": "info", "message": "hello", "worker_id": "w1", "queue": "emails", "timestamp": _when(dialect)},
        )


def _snapshot(engine: Engine) -> dict[str, object]:
    inspector = inspect(engine)
    with engine.connect() as connection:
        return {
            table: (
                [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                sorted(index["name"] or "" for index in inspector.get_indexes(table)),
                [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))],
            )
            for table in ("flux_job_archive", "flux_system_logs")
        }


def test_a_node_archive_upgrades_in_place_and_the_node_console_still_uses_it(
    blank_engine: Engine, dialect: str
) -> None:
    _node_archive(blank_engine, dialect)
    before = _snapshot(blank_engine)
    migration = migrate(blank_engine)
    assert (migration.before, migration.after, migration.changed) == (None, head_revision(), True)
    assert _snapshot(blank_engine) == before  # columns, indexes and rows as they were
    assert set(metadata.tables) <= set(inspect(blank_engine).get_table_names())
    with blank_engine.begin() as connection:  # the Node console's own statements still work
        connection.execute(
            text(NODE_INSERT_JOB),
            {
                "job_id": "node-3",
                "queue": "emails",
                "status": "failed",
                "payload": '{"id":"node-3"}',
                "error": "boom",
                "created_at": _when(dialect),
                "archived_at": _when(dialect),
            },
        )
        found = connection.execute(text(NODE_SELECT), {"queue": "emails", "like": "%node-3%"}).all()
    assert [tuple(row) for row in found] == [("node-3", "emails", "failed", '{"id":"node-3"}', "boom")]
    if dialect == "sqlite":  # space can now be handed back by retention
        with blank_engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2


def test_migrating_twice_changes_nothing(blank_engine: Engine) -> None:
    first = migrate(blank_engine)
    tables = sorted(inspect(blank_engine).get_table_names())
    second = migrate(blank_engine)
    assert first.changed and not second.changed
    assert second.before == second.after == head_revision()
    assert sorted(inspect(blank_engine).get_table_names()) == tables
    assert set(legacy_metadata.tables) <= set(tables)


def test_a_url_or_the_zero_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = tmp_path / str(DEFAULT_SQLITE_PATH).removeprefix("~/")
    assert default_url() == f"sqlite:///{expected}"
    assert migrate().changed
    assert expected.exists()
    assert not migrate(f"sqlite:///{expected}").changed
    nested = tmp_path / "a" / "b" / "archive.db"
    assert migrate(f"sqlite:///{nested}").changed


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a database URL"),
        ("nosuchdb://host/db", "pass a URL such as"),
        ("postgresql+asyncpg://user@host/db", "pip install 'zenith-sdk[postgres]'"),
    ],
)
def test_unusable_urls_say_what_to_do(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        connect(url)


def test_downgrade_removes_the_archives_tables_and_keeps_the_node_ones(engine: Engine) -> None:
    with engine.begin() as connection:
        command.downgrade(_config(connection), "base")
    tables = set(inspect(engine).get_table_names())
    assert not set(metadata.tables) & tables
    assert set(legacy_metadata.tables) <= tables
    assert migrate(engine).changed


def _tsv_statistics(engine: Engine) -> int | None:
    query = "SELECT attstattarget FROM pg_attribute WHERE attrelid = 'zenith_jobs'::regclass AND attname = 'search_tsv'"
    with engine.connect() as connection:
        target = connection.execute(text(query)).scalar_one()
    return None if target is None else int(target)


def test_postgresql_gathers_fine_statistics_of_the_full_text_column(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL's planner reads a statistics target of the full-text column")
    assert _tsv_statistics(engine) == 1000
    with engine.begin() as connection:
        command.downgrade(_config(connection), "0001")
    assert _tsv_statistics(engine) in (-1, None)  # the server's default (-1; NULL from PostgreSQL 17)
    assert migrate(engine).changed
    assert _tsv_statistics(engine) == 1000
