"""Alembic environment of the archive: run by :func:`zenith_archive.migrate` with a connection it opened."""

from __future__ import annotations

from alembic import context

from zenith_archive.migrations import VERSION_TABLE, include_object
from zenith_archive.schema import metadata


def _run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the archive's migrations with zenith_archive.migrate(url), which passes a connection")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        # SQLite alters a table by copying it: Alembic's batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_run()
