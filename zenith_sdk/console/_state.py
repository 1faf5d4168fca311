"""One console's shared state: its Redis client, key space, event emitter, the shared overview and the archive."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis
from starlette.requests import Request

from zenith_sdk.connection import RedisSettings
from zenith_sdk.events import EventEmitter
from zenith_sdk.history import record_metrics
from zenith_sdk.overview import Overview, overview
from zenith_sdk.schedules import Scheduler

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from zenith_sdk.console._settings import ConsoleSettings

__all__ = ["ConsoleState", "OverviewCache", "state"]


class OverviewCache:
    """The overview, computed at most once per ``interval_s`` whoever asks (single flight).

    One request at a time recomputes an overview that is older than the interval; the requests
    that arrive meanwhile get the previous one at once (only the very first ones, with nothing to
    show yet, wait for it), so twenty open browsers cost Redis what one does and none waits for
    another's computation. Each computation also records the minute's totals for the charts (once
    per minute across every console, see :mod:`zenith_sdk.history`).
    """

    def __init__(self, state: ConsoleState, interval_s: float) -> None:
        self._state = state
        self.interval_s = interval_s
        self._computing = threading.Lock()
        self._value: Overview | None = None
        self._at = 0.0
        self.computations = 0
        """How many times the overview was read from Redis."""

    def _fresh(self) -> bool:
        return self._value is not None and time.monotonic() - self._at < self.interval_s

    def get(self) -> Overview:
        """The current overview; recomputed by this call only when it is stale and nobody else is at it."""
        value = self._value
        if self._fresh() and value is not None:
            return value
        if value is not None and not self._computing.acquire(blocking=False):
            return value  # another request is computing the next one: show this one meanwhile
        if value is None:
            self._computing.acquire()  # nothing to show yet: wait for the first computation
        try:
            if not self._fresh():
                self._compute()
        finally:
            self._computing.release()
        assert self._value is not None
        return self._value

    def _compute(self) -> None:
        state = self._state
        value = overview(state.client, keyspace=state.keyspace)
        self.computations += 1
        totals = value.totals
        record_metrics(
            state.client,
            {"waiting": totals.waiting, "delayed": totals.delayed, "failed": totals.failed, "workers": value.workers},
            keyspace=state.keyspace,
            now_ms=value.taken_ms,
        )
        self._value, self._at = value, time.monotonic()


class ConsoleState:
    """What every request of one console shares."""

    def __init__(self, settings: ConsoleSettings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.keyspace = settings.keyspace()
        self._owns_client = client is None
        self.client = client or RedisSettings.from_url(settings.redis_url).client(client_name="zenith-console")
        self.redis_location = RedisSettings.from_url(settings.redis_url).location() if client is None else "Redis"
        self.events = EventEmitter(self.client, keyspace=self.keyspace)
        self.overview = OverviewCache(self, settings.overview_interval_s)
        self.tokens = settings.token_names()
        self.scheduler = Scheduler(self.client, keyspace=self.keyspace, events=self.events)
        """One scheduler per console, so its discovery of paused schedules is reused across requests."""
        self._archive: Engine | None = None
        self._archive_lock = threading.Lock()

    def archive(self, open_engine: Callable[[ConsoleSettings], Engine | None]) -> Engine | None:
        """The archive engine, opened with ``open_engine`` on first use and kept; None (asked again later): no archive.

        ``open_engine`` comes from the caller so that this module never imports SQLAlchemy.
        """
        with self._archive_lock:
            if self._archive is None:
                self._archive = open_engine(self.settings)
            return self._archive

    def close(self) -> None:
        """Close the Redis connections this console opened (a client passed in stays open), and the archive's."""
        if self._archive is not None:
            self._archive.dispose()
        if self._owns_client:
            self.client.close()


def state(request: Request) -> ConsoleState:
    """The console state of the app serving ``request`` (a FastAPI dependency)."""
    console: ConsoleState = request.app.state.console
    return console
