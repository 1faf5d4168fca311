"""The Redis fixtures themselves: a private server by default, never a database holding someone else's keys."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

# A second copy of conftest's module (pytest loads its own as tests.conftest): only its plain functions are used.
from conftest import (
    DB_LOCK_PREFIX,
    URL_ENV,
    LocalRedisServer,
    RedisServerError,
    claim_empty_database,
    foreign_keys_problem,
    isolated_database,
    require_empty_database,
    start_test_server,
)
from redis.backoff import NoBackoff
from redis.retry import Retry


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _config(client: redis.Redis, name: str) -> str:
    return _text({_text(k): v for k, v in client.config_get(name).items()}[name])


def _url_of(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


@pytest.fixture
def spare_server(tmp_path: Path) -> Iterator[LocalRedisServer]:
    """A second private server, so a test may fill any of its databases without disturbing the session's."""
    server = LocalRedisServer.start(tmp_path / "spare")
    try:
        yield server
    finally:
        server.stop()


def _client(server: LocalRedisServer, db: int = 0) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, db=db)


# -- the session's own server ----------------------------------------------------------------------------


def test_the_default_server_is_one_this_session_started(
    redis_server: LocalRedisServer | None, redis_url: str, r: redis.Redis
) -> None:
    if redis_server is None:
        pytest.skip(f"{URL_ENV} names another server")
    url = urlsplit(redis_url)
    assert url.hostname == "127.0.0.1"
    assert url.port == redis_server.port != 6379
    assert _config(r, "port") == str(redis_server.port)
    info = r.info("server")
    assert int(info["tcp_port"]) == redis_server.port
    assert int(info["process_id"]) == redis_server.process.pid
    assert redis_server.process.poll() is None
    assert _config(r, "save") == ""
    assert _config(r, "appendonly") == "no"
    assert _config(r, "databases") == "16"
    assert Path(_config(r, "dir")).resolve() == redis_server.directory.resolve()


def test_a_server_stops_and_leaves_no_process(tmp_path: Path) -> None:
    server = LocalRedisServer.start(tmp_path)
    pid = server.process.pid
    assert _client(server).ping()
    server.stop()
    assert server.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not a zombie
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host="127.0.0.1", port=server.port, retry=Retry(NoBackoff(), 0), socket_connect_timeout=1).ping()
    server.stop()  # a second stop (the session's finalizer, then atexit) is harmless


def test_a_server_that_does_not_come_up_fails_with_one_message_naming_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "fake-redis-server"
    fake.write_text("#!/bin/sh\necho 'fake redis-server: cannot start' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(RedisServerError) as failure:
        LocalRedisServer.start(tmp_path / "server", executable=str(fake))
    message = str(failure.value)
    log = tmp_path / "server" / LocalRedisServer.LOG_NAME
    assert str(log) in message and "\n" not in message
    assert "fake redis-server: cannot start" in log.read_text()


def test_without_redis_server_on_path_the_run_stops_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.exit.Exception) as stop:
        start_test_server(tmp_path / "server")
    assert stop.value.returncode == 2
    assert "install Redis" in stop.value.msg and URL_ENV in stop.value.msg
    assert not (tmp_path / "server").exists()


# -- refusing a database that holds someone else's keys ---------------------------------------------------


def test_the_session_check_refuses_a_database_with_keys_it_did_not_write(isolated_db: redis.Redis) -> None:
    db = int(isolated_db.connection_pool.connection_kwargs["db"])
    url = _url_of(isolated_db)
    assert foreign_keys_problem(isolated_db) is None
    require_empty_database(url)  # an empty database passes
    isolated_db.set(f"{DB_LOCK_PREFIX}5", "another run")  # the suite's own lock keys are allowed
    assert foreign_keys_problem(isolated_db) is None
    require_empty_database(url)
    isolated_db.set("orders:1", "someone's data")
    isolated_db.set("orders:2", "someone's data")
    problem = foreign_keys_problem(isolated_db)
    assert problem is not None and "\n" not in problem
    assert f"database {db} " in problem and "holds 3 keys" in problem and URL_ENV in problem
    with pytest.raises(pytest.exit.Exception) as stop:
        require_empty_database(url)
    assert stop.value.returncode == 2 and stop.value.msg == problem
    assert isolated_db.get("orders:1") == b"someone's data"  # read, never changed


def test_an_unreachable_test_redis_stops_the_run() -> None:
    with pytest.raises(pytest.exit.Exception) as stop:
        require_empty_database("redis://127.0.0.1:1/0")
    assert stop.value.returncode == 2 and "127.0.0.1:1" in stop.value.msg


# -- isolated_db ------------------------------------------------------------------------------------------


def test_the_isolated_db_fixture_is_an_empty_claimed_database_of_its_own(
    isolated_db: redis.Redis, r: redis.Redis
) -> None:
    db = int(isolated_db.client_info()["db"])
    assert db != int(r.client_info()["db"])
    assert isolated_db.dbsize() == 0
    assert r.get(f"{DB_LOCK_PREFIX}{db}") is not None


def test_isolated_db_passes_over_a_database_holding_a_foreign_key(spare_server: LocalRedisServer) -> None:
    main, foreign = _client(spare_server, 0), _client(spare_server, 1)
    foreign.set("someone:else", "precious")
    with isolated_database(spare_server.url, [1, 2]) as client:
        assert int(client.client_info()["db"]) == 2
        assert main.get(f"{DB_LOCK_PREFIX}1") is None  # the passed-over database is not held
        assert main.get(f"{DB_LOCK_PREFIX}2") is not None
        client.set("mine", "1")
    assert foreign.get("someone:else") == b"precious" and foreign.dbsize() == 1
    assert _client(spare_server, 2).dbsize() == 0  # what the test wrote is gone
    assert main.dbsize() == 0  # and so is the lock


def test_isolated_db_fails_clearly_when_no_database_is_empty(spare_server: LocalRedisServer) -> None:
    for db in (1, 2):
        _client(spare_server, db).set(f"theirs:{db}", "keep")
    _client(spare_server, 2).set("theirs:more", "keep")
    with pytest.raises(pytest.fail.Exception) as failure:
        with isolated_database(spare_server.url, [1, 2]):
            pytest.fail("no database should have been claimed")  # pragma: no cover
    message = str(failure.value)
    assert "no empty Redis test database" in message and "\n" not in message
    assert "database 1 holds 1 key " in message and "database 2 holds 2 keys" in message
    assert _client(spare_server, 1).get("theirs:1") == b"keep"
    assert _client(spare_server, 2).dbsize() == 2
    assert _client(spare_server, 0).dbsize() == 0  # no lock left behind


def test_isolated_db_never_shares_a_database_with_another_run(spare_server: LocalRedisServer) -> None:
    main = _client(spare_server, 0)
    main.set(f"{DB_LOCK_PREFIX}1", "another run")
    client, skipped = claim_empty_database(main, "this run", [1, 2])
    assert client is not None and int(client.client_info()["db"]) == 2
    assert skipped == ["database 1 is held by another test run"]
    assert main.get(f"{DB_LOCK_PREFIX}1") == b"another run"
    client.connection_pool.disconnect()


def test_isolated_db_never_claims_the_urls_own_database(spare_server: LocalRedisServer) -> None:
    main = _client(spare_server, 1)  # the database a URL ending in /1 names
    client, skipped = claim_empty_database(main, "this run", [1, 2])
    assert client is not None and int(client.client_info()["db"]) == 2
    assert skipped == []  # database 1 is not even a candidate
    assert main.get(f"{DB_LOCK_PREFIX}2") == b"this run"  # the lock lives in the URL's database
    client.connection_pool.disconnect()
    main.delete(f"{DB_LOCK_PREFIX}2")
    with isolated_database(spare_server.url.removesuffix("/0") + "/1", [1, 2]) as claimed:
        assert int(claimed.client_info()["db"]) == 2
    assert main.dbsize() == 0


def test_isolated_db_passes_over_a_database_the_server_does_not_have(spare_server: LocalRedisServer) -> None:
    with isolated_database(spare_server.url, [16, 3]) as client:  # the server has databases 0-15
        assert int(client.client_info()["db"]) == 3
