"""The worker's Redis connections killed while it is busy: it reconnects, reconciles, loses and repeats nothing."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import pytest
import redis
from event_stream import completions
from patience import HANG_S

from zenith_protocol import KeySpace
from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.worker import App, JobContext, Worker

JOBS = 800


def _kill_named(killer: redis.Redis, name: str) -> int:
    """CLIENT KILL every connection called ``name`` (only this test's worker: other clients live on)."""
    killed = 0
    for client in killer.client_list():
        if client.get("name") == name:
            try:
                killed += int(killer.client_kill_filter(_id=client["id"]))
            except redis.ResponseError:
                pass  # it closed between CLIENT LIST and CLIENT KILL
    return killed


def test_client_kill_while_busy_loses_and_repeats_nothing(
    r: redis.Redis, keyspace: KeySpace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="zenith_sdk")
    ran = Counter[str]()
    lock = threading.Lock()

    def tick(job: JobContext) -> None:
        with lock:
            ran[job.id] += 1

    producer = Producer(r, keyspace=keyspace)
    ids = producer.push_many([JobSpec(name="tick", queue="outage") for _ in range(JOBS)])
    worker = Worker(App({"tick": tick}), r, keyspace=keyspace, queues=["outage"], concurrency=2, poll_interval_s=0.05)
    killer = redis.Redis(connection_pool=redis.ConnectionPool(**r.connection_pool.connection_kwargs))
    kills = 0

    def mid_round_trip() -> bool:
        return any("lost Redis" in record.message for record in caplog.records)

    worker.start()
    try:
        # Kill the worker's connections over and over while it works. A kill between two requests
        # is healed without an error; only one that lands in the middle of a round trip tests the
        # reconciliation, so while none has, more jobs keep the worker busy (the test's timeout
        # bounds the wait, whatever the machine's speed).
        while len(completions(r, keyspace)) < len(ids) or not mid_round_trip():
            if len(completions(r, keyspace)) >= len(ids):
                ids += producer.push_many([JobSpec(name="tick", queue="outage") for _ in range(JOBS // 4)])
            kills += _kill_named(killer, f"zenith-worker:{worker.id}")
            time.sleep(0.002)
    finally:
        worker.stop(timeout_s=HANG_S)
        killer.connection_pool.disconnect()
    completed = completions(r, keyspace)
    assert kills > 0
    assert set(completed) == set(ids)
    assert max(completed.values()) == 1
    assert set(ran) == set(ids)
    assert max(ran.values()) == 1
    assert r.llen(keyspace.queue("outage")) == 0
    assert r.llen(keyspace.processing("outage", worker.id)) == 0
