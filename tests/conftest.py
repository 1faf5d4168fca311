"""Shared fixtures: a real Redis, isolated per test by key prefix or by a database of its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from counting import CountingRedis

from zenith_protocol import KeySpace

REDIS_URL = os.environ.get("ZENITH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_DB_LOCK_TTL_S = 600
_FIRST_TEST_DB, _LAST_TEST_DB = 1, 13


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the Redis server the tests use; fails the run with a hint when it is down."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.exit(f"Redis is not reachable at {REDIS_URL} ({exc}); start it as the README says", returncode=2)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A raw-bytes client on the shared test database; pair it with the ``keyspace`` fixture."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def keyspace(r: redis.Redis) -> Iterator[KeySpace]:
    """A key space whose every prefix is unique to this test; its keys are deleted afterwards."""
    tag = f"t{uuid.uuid4().hex[:10]}"
    space = KeySpace(
        queue_prefix=f"{tag}:queue:",
        console_prefix=f"{tag}:flux_console:",
        pulse_prefix=f"{tag}:pulse:",
        legacy_pulse_prefix=f"{tag}:gravito:quasar:node:",
        command_prefix=f"{tag}:gravito:quasar:cmd:",
        settings_prefix=f"{tag}:gravito:zenith:",
        zenith_prefix=f"{tag}:zenith:",
    )
    yield space
    keys = list(r.scan_iter(match=f"{tag}:*", count=1000))
    for start in range(0, len(keys), 500):
        r.delete(*keys[start : start + 500])


@pytest.fixture
def isolated_db(redis_url: str) -> Iterator[redis.Redis]:
    """A whole Redis database for this test alone (for default prefixes); flushed before and after.

    A lock key in database 0 claims the database, so concurrent test runs never share one.
    """
    base = redis.Redis.from_url(redis_url)
    owner = uuid.uuid4().hex
    try:
        for db in range(_FIRST_TEST_DB, _LAST_TEST_DB + 1):
            lock = f"zenith-tests:db-lock:{db}"
            if base.set(lock, owner, nx=True, ex=_DB_LOCK_TTL_S):
                break
        else:
            pytest.fail("no free Redis test database (1-13): another test run holds them all")
        # from_url keeps the URL's own database number over a db= argument: set it on the pool instead.
        client = redis.Redis(
            connection_pool=redis.ConnectionPool(**{**base.connection_pool.connection_kwargs, "db": db})
        )
        assert int(client.client_info()["db"]) == db, "the isolated client must be on the claimed database"
        client.flushdb()
        try:
            yield client
        finally:
            client.flushdb()
            client.connection_pool.disconnect()
            if base.get(lock) == owner.encode():
                base.delete(lock)
    finally:
        base.close()


@pytest.fixture
def counting(redis_url: str) -> Iterator[CountingRedis]:
    """A client on the test database that records every round trip it makes."""
    pool = redis.ConnectionPool.from_url(redis_url)
    client = CountingRedis(connection_pool=pool)
    yield client
    client.close()
    pool.disconnect()
