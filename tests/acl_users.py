"""Redis users with restricted rights, created in the test server for one test and deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis

NO_SCRIPTS = ("+@all", "-@scripting")
"""Every command but the scripting ones (EVAL, EVALSHA, EVALSHA_RO, SCRIPT, FCALL...)."""

READ_ONLY = ("+@read", "+@connection")
"""Reads only: no writes, no scripts."""


@contextmanager
def restricted_client(r: redis.Redis, commands: Sequence[str]) -> Iterator[redis.Redis]:
    """A client logged in as a new user allowed ``commands`` on every key; the user is deleted afterwards."""
    user, password = f"zenith-test-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    r.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"], channels=["*"], commands=list(commands))
    kwargs = {**r.connection_pool.connection_kwargs, "username": user, "password": password}
    client = redis.Redis(connection_pool=redis.ConnectionPool(**kwargs))
    try:
        yield client
    finally:
        client.connection_pool.disconnect()
        r.acl_deluser(user)
