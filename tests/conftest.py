"""Shared fixtures: a real Redis, isolated per test by key prefix or by a database of its own.

By default the session starts its own ``redis-server`` (found on PATH) on a free port of 127.0.0.1,
without persistence, and stops it at the end: the tests never see a Redis they did not start.
``ZENITH_TEST_REDIS_URL`` points them at another server instead; its database must then be empty
(apart from this suite's own ``zenith-tests:*`` lock keys), and ``isolated_db`` only claims
databases that are empty, so the tests never change or delete data they did not write.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from counting import CountingRedis
from hypothesis import HealthCheck, settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from zenith_protocol import KeySpace
from zenith_sdk.demo._redis import die_with_parent, free_port

pytest_plugins = ["worker_fixtures"]  # start_worker, producer, gate

# Property tests judge what the code does, never how fast a loaded machine runs it.
settings.register_profile("zenith", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("zenith")

URL_ENV = "ZENITH_TEST_REDIS_URL"
OWN_KEY_PREFIX = "zenith-tests:"  # the only keys the suite writes outside its per-test prefixes
DB_LOCK_PREFIX = f"{OWN_KEY_PREFIX}db-lock:"
TEST_DATABASES = range(1, 14)  # what ``isolated_db`` may claim; never the URL's own database
_DB_LOCK_TTL_S = 600
_PING_TRIES, _PING_DELAY_S = 200, 0.025  # at most about 5 s for redis-server to answer
_START_ATTEMPTS = 3  # another process may take the free port before redis-server binds it
_STOP_TIMEOUT_S = 5.0
_SILENT = f"no answer after {_PING_TRIES} tries"


class RedisServerError(RuntimeError):
    """The test redis-server did not come up."""


class LocalRedisServer:
    """A ``redis-server`` child on a free port of 127.0.0.1: no persistence, 16 databases, its own directory.

    It is stopped by ``stop()``, at interpreter exit if nobody called it, and (on Linux) when the
    process that started it dies.
    """

    LOG_NAME = "redis-server.log"

    def __init__(self, process: subprocess.Popen[bytes], port: int, directory: Path) -> None:
        self.process = process
        self.port = port
        self.directory = directory
        self.url = f"redis://127.0.0.1:{port}/0"

    @property
    def log_file(self) -> Path:
        return self.directory / self.LOG_NAME

    @classmethod
    def start(cls, directory: Path, executable: str = "redis-server") -> LocalRedisServer:
        """Start a server and return once it answers PING; ``RedisServerError`` (naming the log) if it does not."""
        directory.mkdir(parents=True, exist_ok=True)
        for _ in range(_START_ATTEMPTS):
            server = cls._spawn(executable, free_port(), directory)
            outcome = server._wait_until_up()
            if outcome == "up":
                return server
            server.stop()
            if outcome == _SILENT:  # running but not answering: another try would not help
                break
        raise RedisServerError(
            f"the test redis-server ({executable}) did not answer PING on 127.0.0.1:{server.port} "
            f"({outcome}); see its log {server.log_file}"
        )

    @classmethod
    def _spawn(cls, executable: str, port: int, directory: Path) -> LocalRedisServer:
        command = [executable, "--port", str(port), "--bind", "127.0.0.1", "--databases", "16"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(directory), "--daemonize", "no"]
        with open(directory / cls.LOG_NAME, "ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    command,
                    cwd=directory,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches pytest alone, whose teardown stops the server
                    preexec_fn=die_with_parent(),
                )
            except OSError as exc:
                raise RedisServerError(f"could not run {executable} ({exc}); see {directory / cls.LOG_NAME}") from exc
        server = cls(process, port, directory)
        atexit.register(server.stop)
        return server

    def _wait_until_up(self) -> str:
        """Poll PING a bounded number of times: "up" once this very process answers, else why not."""
        probe = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=1,
            socket_timeout=1,
        )
        try:
            for _ in range(_PING_TRIES):
                if self.process.poll() is not None:
                    return f"it exited with status {self.process.returncode}"
                try:
                    probe.ping()
                except (redis.ConnectionError, redis.TimeoutError):
                    time.sleep(_PING_DELAY_S)
                    continue
                # Another server that took the port first would answer too: make sure it is this one.
                if int(probe.info("server")["process_id"]) == self.process.pid:
                    return "up"
                return "another process answered on its port"
            return _SILENT
        finally:
            probe.close()

    def stop(self) -> None:
        """Terminate the server, wait for it, kill it if it lingers. Safe to call more than once."""
        atexit.unregister(self.stop)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_test_server(directory: Path) -> LocalRedisServer:
    """The session's own redis-server; stops the run with a clear message when that is impossible."""
    if shutil.which("redis-server") is None:
        pytest.exit(
            f"redis-server is not on PATH: install Redis (for example `apt-get install redis-server`), "
            f"or set {URL_ENV} to an empty database of a running Redis",
            returncode=2,
        )
    try:
        return LocalRedisServer.start(directory)
    except RedisServerError as exc:
        pytest.exit(str(exc), returncode=2)


def _where(client: redis.Redis) -> str:
    """The server a client talks to, without its password."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}"


def _keys(count: int) -> str:
    return f"{count} key" if count == 1 else f"{count} keys"


def _db(client: redis.Redis) -> int:
    return int(client.connection_pool.connection_kwargs.get("db", 0) or 0)


def foreign_keys_problem(client: redis.Redis) -> str | None:
    """None when the client's database holds no key but this suite's own ``zenith-tests:*`` ones; else why."""
    total = client.dbsize()
    if total == 0:
        return None
    own = OWN_KEY_PREFIX.encode()
    for key in client.scan_iter(count=1000):
        if not (key if isinstance(key, bytes) else str(key).encode()).startswith(own):
            return (
                f"refusing to run the tests: database {_db(client)} of the Redis at {_where(client)} is not empty, "
                f"it holds {_keys(total)} (not only this suite's {OWN_KEY_PREFIX}* locks); "
                f"point {URL_ENV} at an empty database"
            )
    return None


def require_empty_database(url: str) -> None:
    """Stop the run unless ``url`` answers and its database holds nothing but this suite's lock keys."""
    client = redis.Redis.from_url(url)
    try:
        try:
            client.ping()
        except redis.ConnectionError as exc:
            pytest.exit(f"the test Redis at {_where(client)} is not reachable ({exc}); check {URL_ENV}", returncode=2)
        problem = foreign_keys_problem(client)
    finally:
        client.close()
    if problem is not None:
        pytest.exit(problem, returncode=2)


def _database_client(base: redis.Redis, db: int) -> redis.Redis:
    # from_url keeps the URL's own database number over a db= argument: set it on the pool instead.
    return redis.Redis(connection_pool=redis.ConnectionPool(**{**base.connection_pool.connection_kwargs, "db": db}))


def _release_lock(base: redis.Redis, db: int, owner: str) -> None:
    lock = f"{DB_LOCK_PREFIX}{db}"
    if base.get(lock) == owner.encode():
        base.delete(lock)


def claim_empty_database(
    base: redis.Redis, owner: str, candidates: Iterable[int] = TEST_DATABASES
) -> tuple[redis.Redis | None, list[str]]:
    """Claim the first candidate database that no other run holds and that is empty; never change the others.

    The claim is a lock key in ``base``'s database, so concurrent runs never share a database. Returns a
    client on the claimed database (None if there is none) and, per database passed over, why.
    """
    main_db = _db(base)
    skipped: list[str] = []
    for db in candidates:
        if db == main_db:
            continue
        if not base.set(f"{DB_LOCK_PREFIX}{db}", owner, nx=True, ex=_DB_LOCK_TTL_S):
            skipped.append(f"database {db} is held by another test run")
            continue
        client = _database_client(base, db)
        try:
            keys = client.dbsize()
        except redis.ResponseError as exc:  # e.g. the server has fewer databases
            skipped.append(f"database {db} is unusable ({exc})")
        else:
            if keys == 0:
                return client, skipped
            skipped.append(f"database {db} holds {_keys(keys)} these tests did not write")
        client.connection_pool.disconnect()
        _release_lock(base, db, owner)
    return None, skipped


@contextmanager
def isolated_database(url: str, candidates: Iterable[int] = TEST_DATABASES) -> Iterator[redis.Redis]:
    """An empty database of the server at ``url`` for one test; flushed and released afterwards."""
    base = redis.Redis.from_url(url)
    owner = uuid.uuid4().hex
    try:
        client, skipped = claim_empty_database(base, owner, candidates)
        if client is None:
            pytest.fail(
                f"no empty Redis test database to claim at {_where(base)}: {'; '.join(skipped) or 'no candidates'}"
            )
        db = _db(client)
        try:
            assert int(client.client_info()["db"]) == db, "the isolated client must be on the claimed database"
            yield client
        finally:
            client.flushdb()  # empty when claimed, locked since: all it holds now, the test wrote
            client.connection_pool.disconnect()
            _release_lock(base, db, owner)
    finally:
        base.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisServer | None]:
    """The redis-server this session started (stopped at its end), or None when ZENITH_TEST_REDIS_URL is set."""
    if os.environ.get(URL_ENV):
        yield None
        return
    server = start_test_server(tmp_path_factory.mktemp("redis-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: LocalRedisServer | None) -> str:
    """URL of the Redis database the tests use; stops the run with a clear message if it is unusable."""
    url = redis_server.url if redis_server is not None else os.environ[URL_ENV]
    require_empty_database(url)
    return url


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
    """A whole, empty Redis database for this test alone (for default prefixes); flushed afterwards.

    A lock key in the main database claims it, so concurrent test runs never share one; a database
    holding keys these tests did not write is passed over, never flushed.
    """
    with isolated_database(redis_url) as client:
        yield client


@pytest.fixture
def counting(redis_url: str) -> Iterator[CountingRedis]:
    """A client on the test database that records every round trip it makes."""
    pool = redis.ConnectionPool.from_url(redis_url)
    client = CountingRedis(connection_pool=pool)
    yield client
    client.close()
    pool.disconnect()
