"""Alembic migrations of the archive, shipped in the package and run by :func:`zenith_archive.migrate`.

``zenith archive migrate`` (or ``zenith_archive.migrate(url)``) upgrades any archive to the
newest revision: a new database, one made by an older Zenith, or one the Node console made
(its ``flux_job_archive`` and ``flux_system_logs`` tables are kept as they are). Running it again
does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine

from zenith_archive.db import connect
from zenith_archive.schema import metadata

__all__ = ["VERSION_TABLE", "Migration", "current_revision", "head_revision", "include_object", "migrate"]

VERSION_TABLE = "zenith_alembic_version"
"""Where Alembic records the archive's revision (not ``alembic_version``, which the database may use already)."""


@dataclass(frozen=True)
class Migration:
    """What :func:`migrate` did: the revision before (None for a new archive) and after."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        """Whether any revision was applied."""
        return self.before != self.after


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """For autogenerate: compare only the archive's own tables (not the legacy, FTS or other tables)."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    table_name = name if type_ == "table" else getattr(table, "name", None)
    return table_name in metadata.tables


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "zenith_archive:migrations")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of the package ships."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("the archive's migrations are missing from the package")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision of the archive on ``connection``, or None when it was never migrated."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _reclaimable_sqlite(engine: Engine) -> None:
    """Turn on incremental auto-vacuum in a SQLite file made without it (the Node console's): one VACUUM."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            mode = cursor.execute("PRAGMA auto_vacuum").fetchone()
            if mode is not None and mode[0] == 0:
                cursor.execute("PRAGMA auto_vacuum = INCREMENTAL")
                cursor.execute("VACUUM")  # outside a transaction: the connection runs in autocommit mode
        finally:
            cursor.close()
    finally:
        raw.close()


def migrate(target: str | URL | Engine | None = None) -> Migration:
    """Upgrade the archive at ``target`` to the newest revision.

    ``target`` is a URL or an engine; None means the zero-config SQLite file. Running it on an
    archive that is up to date does nothing.
    """
    engine = target if isinstance(target, Engine) else connect(target)
    try:
        with engine.begin() as connection:
            before = current_revision(connection)
            command.upgrade(_config(connection), "head")
            after = current_revision(connection)
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            _reclaimable_sqlite(engine)
    finally:
        if engine is not target:
            engine.dispose()
    if after is None:  # pragma: no cover - upgrade always records a revision
        raise RuntimeError("the archive's migrations recorded no revision")
    return Migration(before=before, after=after)
