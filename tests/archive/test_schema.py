"""The migrated archive matches zenith_archive.schema on every dialect, full-text index included."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import Engine

from zenith_archive import fts
from zenith_archive.migrations import include_object
from zenith_archive.schema import jobs, legacy_metadata, metadata


def test_the_migrated_archive_matches_the_schema_module(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include_object})
        differences = compare_metadata(context, metadata)
    # The full-text objects are per-dialect DDL outside the metadata.
    assert [d for d in differences if fts.PG_TSV_COLUMN not in str(d) and fts.MYSQL_FULLTEXT_INDEX not in str(d)] == []
    tables = set(inspect(engine).get_table_names())
    assert set(metadata.tables) | set(legacy_metadata.tables) <= tables


def test_full_text_index_finds_a_job_by_a_word_of_its_search_text(engine: Engine) -> None:
    with engine.begin() as connection:
        for index, words in enumerate(("smtp timeout talking to mail", "card declined")):
            connection.execute(
                insert(jobs).values(queue="emails", job_id=f"j{index}", state="dead", attempts=1, search_text=words)
            )
    with engine.connect() as connection:
        dialect = connection.dialect.name
        if dialect == "sqlite":
            found = connection.execute(
                text(f"SELECT rowid FROM {fts.SQLITE_FTS_TABLE} WHERE {fts.SQLITE_FTS_TABLE} MATCH :q"),
                {"q": '"declined"'},
            ).scalars()
            ids = set(found)
        elif dialect == "postgresql":
            ids = set(
                connection.execute(
                    text(f"SELECT id FROM zenith_jobs WHERE {fts.PG_TSV_COLUMN} @@ websearch_to_tsquery('simple', :q)"),
                    {"q": "declined"},
                ).scalars()
            )
        else:
            ids = set(
                connection.execute(
                    text("SELECT id FROM zenith_jobs WHERE MATCH (search_text) AGAINST (:q IN BOOLEAN MODE)"),
                    {"q": "+declined"},
                ).scalars()
            )
        expected = set(connection.execute(select(jobs.c.id).where(jobs.c.job_id == "j1")).scalars())
    assert ids == expected
