"""Consoles on the test Redis, with this test's key prefixes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from console_app import settings_for
from fastapi import FastAPI
from starlette.testclient import TestClient

from zenith_protocol import KeySpace
from zenith_sdk.console import create_app


@pytest.fixture
def make_app(r: redis.Redis, keyspace: KeySpace, redis_url: str) -> Callable[..., FastAPI]:
    """A factory of consoles on this test's keys."""

    def make(**extra: object) -> FastAPI:
        return create_app(settings_for(keyspace, redis_url, **extra))

    return make


@pytest.fixture
def console(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    """A console at the root, through its lifespan."""
    with TestClient(make_app(), base_url="http://console.test") as client:
        yield client
