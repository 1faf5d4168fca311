"""Opening an archive database: the zero-config SQLite file, or any SQLAlchemy URL.

SQLite connections get WAL (readers never block the archiver), foreign keys, a busy timeout and
``auto_vacuum=INCREMENTAL`` (it takes effect when the first table is created, so retention can
hand space back with ``PRAGMA incremental_vacuum``). Transactions on SQLite start with ``BEGIN``
emitted by SQLAlchemy itself (pysqlite would defer it to the first write), and a connection with
the execution option ``sqlite_begin="IMMEDIATE"`` takes the write lock at once: a writer that
reads first then never fails on a lock upgrade.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError

from zenith_protocol import ConfigError

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "SQLITE_BUSY_TIMEOUT_MS",
    "configure_sqlite",
    "connect",
    "default_url",
    "describe_url",
]

DEFAULT_SQLITE_PATH = Path("~/.local/share/zenith/archive.db")
"""The zero-config archive (``~`` is expanded when it is used)."""
SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite connection waits for another writer before it gives up."""
_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE", "EXCLUSIVE"})
_DRIVER_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}
_URL_EXAMPLES = "sqlite:///archive.db, postgresql+psycopg://user@host/db or mysql+pymysql://user@host/db"


def default_url() -> str:
    """The URL of the zero-config SQLite archive (its directory is created when missing)."""
    path = DEFAULT_SQLITE_PATH.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def describe_url(url: str | URL) -> str:
    """``url`` for messages: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an unreadable URL)"


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # pysqlite's own transaction handling is switched off; _sqlite_begin emits BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table, or no effect
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable at checkpoints, never corrupt
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    mode = str(connection.get_execution_options().get("sqlite_begin", "DEFERRED")).upper()
    if mode not in _BEGIN_MODES:
        raise ValueError(f"sqlite_begin must be one of {sorted(_BEGIN_MODES)}, got {mode!r}")
    connection.exec_driver_sql(f"BEGIN {mode}")


def configure_sqlite(engine: Engine) -> None:
    """Give ``engine`` (SQLite) the archive's pragmas and explicit ``BEGIN``; :func:`connect` does it."""
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)


def connect(url: str | URL | None = None, **engine_options: Any) -> Engine:
    """An engine for the archive at ``url`` (None: the zero-config SQLite file, see :data:`DEFAULT_SQLITE_PATH`).

    ``engine_options`` go to :func:`sqlalchemy.create_engine`. The engine does not create tables:
    run :func:`zenith_archive.migrate` once first.

    Raises:
        ConfigError: ``url`` is not a database URL SQLAlchemy knows, or its driver is not installed.
    """
    try:
        target = make_url(url if url is not None else default_url())
    except ArgumentError as exc:
        raise ConfigError(f"{url!r} is not a database URL; pass one such as {_URL_EXAMPLES}") from exc
    backend = target.get_backend_name()
    if backend == "sqlite":
        database = target.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            target = target.set(database=str(Path(database).expanduser()))
    else:
        engine_options.setdefault("pool_pre_ping", True)
    try:
        engine = create_engine(target, **engine_options)
    except ArgumentError as exc:  # an unknown dialect or driver name
        raise ConfigError(f"{describe_url(target)}: {exc}; pass a URL such as {_URL_EXAMPLES}") from exc
    except ImportError as exc:
        extra = _DRIVER_EXTRAS.get(backend)
        hint = f"install it with `pip install 'zenith-sdk[{extra}]'`" if extra else "install that driver"
        raise ConfigError(f"the database driver for {describe_url(target)} is missing ({exc}); {hint}") from exc
    if backend == "sqlite":
        configure_sqlite(engine)
    return engine
