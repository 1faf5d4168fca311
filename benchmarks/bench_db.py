"""A client on the benchmark's own database, whatever database the URL names."""

from __future__ import annotations

from typing import Any

import redis


def client_on_db(url: str, db: int, **options: Any) -> redis.Redis:
    """A client for ``url`` on database ``db``.

    ``redis.Redis.from_url(url, db=n)`` keeps the URL's own database (``/0``) and ignores ``db=``;
    a benchmark that empties "its" database must never reach another one.
    """
    # No socket timeout: the existing algorithms being measured keep Redis busy for many seconds.
    kwargs = {**redis.ConnectionPool.from_url(url).connection_kwargs, "socket_timeout": None, **options, "db": db}
    client = redis.Redis(connection_pool=redis.ConnectionPool(**kwargs))
    if int(client.client_info()["db"]) != db:  # pragma: no cover - a guard, not a branch
        raise RuntimeError(f"connected to the wrong database for a benchmark that empties database {db}")
    return client
