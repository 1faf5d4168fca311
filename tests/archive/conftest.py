"""Archive databases for tests: the same test runs on SQLite, PostgreSQL and MariaDB.

Each test gets a database of its own, created before and dropped after: a file in its temporary
directory on SQLite, a schema (reached through ``search_path``) on PostgreSQL, a database
``zenith_t_<random>`` on MariaDB. The servers are those CI starts (``.ci/run``); their URLs may be
changed with ``ZENITH_TEST_PG_URL`` and ``ZENITH_TEST_MYSQL_URL``. A server that cannot be reached
skips its tests with the reason.

Fixtures: ``engine`` (migrated to the newest revision) and ``blank_engine`` (empty). Their
``url`` (``engine.url.render_as_string(hide_password=False)``, see :func:`url_of`) reaches the
same database from another process.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import OperationalError

from zenith_archive import connect, migrate

PG_URL = os.environ.get("ZENITH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("ZENITH_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
DIALECTS = ("sqlite", "postgresql", "mariadb")
_unreachable: dict[str, str] = {}


def url_of(engine: Engine) -> str:
    """The URL that reaches ``engine``'s database (and its test schema) from another process."""
    return engine.url.render_as_string(hide_password=False)


def _admin(url: str, dialect: str) -> Engine:
    """An engine on the server's own database; skips the test when the server does not answer."""
    if dialect in _unreachable:
        pytest.skip(_unreachable[dialect])
    engine = connect(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        reason = " ".join(str(exc.orig).split())
        _unreachable[dialect] = f"{dialect} at {make_url(url).render_as_string()} is not reachable ({reason})"
        pytest.skip(_unreachable[dialect])
    return engine


@contextmanager
def _on_server(dialect: str, admin_url: str, create: str, drop: str, url: URL) -> Iterator[URL]:
    """Run ``create`` on the server, yield ``url`` (which reaches what it made), then run ``drop``."""
    admin = _admin(admin_url, dialect)
    try:
        with admin.connect() as connection:
            connection.execute(text(create))
        try:
            yield url
        finally:
            with admin.connect() as connection:
                connection.execute(text(drop))
    finally:
        admin.dispose()


@contextmanager
def _database(dialect: str, directory: Path) -> Iterator[URL]:
    name = f"zenith_t_{uuid.uuid4().hex[:12]}"
    if dialect == "postgresql":
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={name}"})
        with _on_server(dialect, PG_URL, f'CREATE SCHEMA "{name}"', f'DROP SCHEMA "{name}" CASCADE', url) as url:
            yield url
    elif dialect == "mariadb":
        create = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        url = make_url(MYSQL_URL).set(database=name)
        with _on_server(dialect, MYSQL_URL, create, f"DROP DATABASE `{name}`", url) as url:
            yield url
    else:
        yield make_url(f"sqlite:///{directory / 'archive.db'}")


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    """The database kind this run of the test uses."""
    name: str = request.param
    return name


@pytest.fixture
def blank_engine(dialect: str, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of its own for this test (dropped afterwards)."""
    with _database(dialect, tmp_path) as url:
        engine = connect(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def engine(blank_engine: Engine) -> Engine:
    """An archive of its own for this test, migrated to the newest revision."""
    migrate(blank_engine)
    return blank_engine
