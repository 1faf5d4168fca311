"""The shared overview: one computation for many viewers, and nobody waits for another's recomputation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from console_app import settings_for
from patience import HANG_S

from zenith_protocol import KeySpace
from zenith_sdk.console._state import ConsoleState
from zenith_sdk.overview import Overview, overview


def test_twenty_viewers_at_once_cost_one_computation(r: redis.Redis, keyspace: KeySpace, redis_url: str) -> None:
    r.sadd(keyspace.queue_index(), "emails")
    state = ConsoleState(settings_for(keyspace, redis_url, overview_interval_s=60), r)
    with ThreadPoolExecutor(20) as pool:
        seen = list(pool.map(lambda _n: state.overview.get(), range(20)))
    assert state.overview.computations == 1
    assert all(overview is seen[0] for overview in seen)
    assert [queue.name for queue in seen[0].queues] == ["emails"]


def test_a_stale_overview_is_shown_while_one_viewer_computes_the_next(
    r: redis.Redis, keyspace: KeySpace, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = ConsoleState(settings_for(keyspace, redis_url, overview_interval_s=60), r)
    first = state.overview.get()
    state.overview.interval_s = 0  # from now on every overview is stale
    started, release = threading.Event(), threading.Event()

    def slow(client: redis.Redis, *, keyspace: KeySpace | None = None) -> Overview:
        started.set()
        release.wait(HANG_S)
        return overview(client, keyspace=keyspace)

    monkeypatch.setattr("zenith_sdk.console._state.overview", slow)
    with ThreadPoolExecutor(2) as pool:
        computing = pool.submit(state.overview.get)
        assert started.wait(HANG_S)
        assert state.overview.get() is first  # the other viewer gets the previous one at once
        release.set()
        assert computing.result(HANG_S) is not first
    assert state.overview.computations == 2
