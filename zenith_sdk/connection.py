"""Connecting to Redis: from a URL (``redis://``, ``rediss://``, ``unix://``) or a ready client."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, TypedDict, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from zenith_protocol import ConfigError

if TYPE_CHECKING:
    from typing import Unpack

__all__ = ["DEFAULT_REDIS_URL", "ClientHolder", "RedisOptions", "RedisSettings", "connect"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_SCHEMES = ("redis://", "rediss://", "unix://")
_DB_NUMBER = re.compile(r"[0-9]+")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*")


class RedisOptions(TypedDict, total=False):
    """The fields of :class:`RedisSettings` besides the URL, as :meth:`RedisSettings.from_url` takes them."""

    socket_timeout_s: float
    connect_timeout_s: float
    health_check_interval_s: float


class RedisSettings(BaseModel):
    """How to reach Redis. The URL may carry a password; it never appears in a repr.

    Args:
        url: ``redis://[user:password@]host:port/db``, ``rediss://`` for TLS, or ``unix:///path?db=0``.
        socket_timeout_s: how long one command may wait for a reply.
        connect_timeout_s: how long connecting may take.
        health_check_interval_s: ping idle connections this often before reuse.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: SecretStr = Field(default=SecretStr(DEFAULT_REDIS_URL))
    socket_timeout_s: float = Field(default=10.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    health_check_interval_s: float = Field(default=30.0, ge=0)

    @classmethod
    def from_url(cls, url: str, **options: Unpack[RedisOptions]) -> RedisSettings:
        """Settings for ``url``; raises :class:`ConfigError` when the URL cannot work.

        The database (``/N`` after the host, or ``?db=N``) must be a whole number of 0 or more:
        redis-py would quietly read ``/abc`` as database 0.
        """
        if not isinstance(url, str) or not url.startswith(_SCHEMES):
            raise ConfigError(f"Redis URL must start with redis://, rediss:// or unix://, got {_redacted(url)!r}")
        _check_database(url)
        return cls(url=SecretStr(url), **options)

    def location(self) -> str:
        """Where this points, without credentials: ``host:port db N``, or the socket path and database."""
        url = self.url.get_secret_value()
        try:
            parts = urlsplit(url)
            port = parts.port or 6379  # reading .port checks that it is a number from 0 to 65535
        except ValueError as exc:
            raise ConfigError(f"invalid Redis URL {_redacted(url)!r}: {exc}") from exc
        db = (parse_qs(parts.query).get("db") or [""])[0]
        if parts.scheme == "unix":
            return f"{unquote(parts.path)} db {db or 0}"
        host = parts.hostname or "localhost"
        return f"{f'[{host}]' if ':' in host else host}:{port} db {db or unquote(parts.path).strip('/') or 0}"

    def client(self, *, decode_responses: bool = False, client_name: str | None = None) -> redis.Redis:
        """A new redis-py client (connections are opened lazily, on first command).

        ``client_name`` names its connections in ``CLIENT LIST``.
        """
        try:
            return redis.Redis.from_url(
                self.url.get_secret_value(),
                decode_responses=decode_responses,
                client_name=client_name,
                socket_timeout=self.socket_timeout_s,
                socket_connect_timeout=self.connect_timeout_s,
                health_check_interval=int(self.health_check_interval_s),
            )
        except ValueError as exc:
            raise ConfigError(f"invalid Redis URL {_redacted(self.url.get_secret_value())!r}: {exc}") from exc


def _check_database(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise ConfigError(f"invalid Redis URL {_redacted(url)!r}: {exc}") from exc
    # redis-py reads the path as the database for redis:// and rediss://; for unix:// it is the socket.
    numbers = [] if parts.scheme == "unix" else [unquote(parts.path).strip("/")]
    numbers += parse_qs(parts.query, keep_blank_values=True).get("db", [])
    for number in numbers:
        if number and not _DB_NUMBER.fullmatch(number):
            raise ConfigError(
                f"the database in Redis URL {_redacted(url)!r} must be a whole number of 0 or more "
                f"(as in redis://127.0.0.1:6379/0), got {number!r}"
            )


def _redacted(url: object) -> str:
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return _QUERY_PASSWORD.sub(r"\1***", f"{scheme}{sep}{rest}")


def connect(target: str | redis.Redis | RedisSettings | None = None, *, decode_responses: bool = False) -> redis.Redis:
    """A redis-py client for ``target``: a URL, settings, or a client (returned unchanged).

    ``None`` means :data:`DEFAULT_REDIS_URL`.
    """
    if isinstance(target, redis.Redis):
        return target
    if isinstance(target, RedisSettings):
        return target.client(decode_responses=decode_responses)
    return RedisSettings.from_url(target or DEFAULT_REDIS_URL).client(decode_responses=decode_responses)


H = TypeVar("H", bound="ClientHolder")


class ClientHolder:
    """Base of objects built on a Redis client: a client made from a URL is theirs to close.

    ``close()`` (or leaving a ``with`` block) closes it; a client passed in stays open.
    """

    client: redis.Redis

    def _hold(self, target: str | redis.Redis | RedisSettings | None) -> None:
        self.client = connect(target)
        self._owns_client = not isinstance(target, redis.Redis)

    def close(self) -> None:
        """Close the connections, if this object opened them (a client you passed stays open)."""
        if self._owns_client:
            self.client.close()

    def __enter__(self: H) -> H:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
