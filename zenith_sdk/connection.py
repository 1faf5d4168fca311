"""Connecting to Redis: from a URL (``redis://``, ``rediss://``, ``unix://``) or a ready client."""

from __future__ import annotations

from typing import Any, TypeVar

import redis
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from zenith_protocol import ConfigError

__all__ = ["DEFAULT_REDIS_URL", "ClientHolder", "RedisSettings", "connect"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_SCHEMES = ("redis://", "rediss://", "unix://")


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
    def from_url(cls, url: str, **options: Any) -> RedisSettings:
        """Settings for ``url``; raises :class:`ConfigError` when the URL cannot work."""
        if not isinstance(url, str) or not url.startswith(_SCHEMES):
            raise ConfigError(f"Redis URL must start with redis://, rediss:// or unix://, got {_redacted(url)!r}")
        return cls(url=SecretStr(url), **options)

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


def _redacted(url: object) -> str:
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


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
