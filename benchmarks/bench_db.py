"""A client on the benchmark's own database, whatever database the URL names."""

from __future__ import annotations

import argparse
import sys
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


def add_database_options(parser: argparse.ArgumentParser, default_db: int) -> None:
    """``--redis``, ``--db`` and ``--flush``: where the benchmark runs, and whether it may empty that database."""
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--db", type=int, default=default_db, help="a database of its own (tests use 1-13)")
    parser.add_argument("--flush", action="store_true", help="empty the database first even if it holds keys")


def refuses(client: redis.Redis, args: argparse.Namespace) -> bool:
    """True, after saying why, when the benchmark's database holds keys and ``--flush`` was not given."""
    if client.dbsize() and not args.flush:
        print(f"database {args.db} is not empty; pass --flush to empty it or --db to pick another", file=sys.stderr)
        return True
    return False
