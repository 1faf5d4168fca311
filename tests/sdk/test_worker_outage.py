"""Redis connections killed under a running worker: it reconnects, reconciles, loses and repeats nothing."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import pytest
import redis

from zenith_protocol import EventType, KeySpace, decode_event_fields
from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.worker import App, JobContext, Worker


def _completed(r: redis.Redis, space: KeySpace) -> Counter[str]:
    done = Counter[str]()
    for _, fields in r.xrange(space.events()):
        event = decode_event_fields(fields)
        if event.type == EventType.COMPLETED and event.job_id:
            done[event.job_id] += 1
    return done


def test_client_kill_while_busy_loses_and_repeats_nothing(
    r: redis.Redis, keyspace: KeySpace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="zenith_sdk")
    ran = Counter[str]()
    lock = threading.Lock()
    app = App()

    @app.handler("tick")
    def tick(job: JobContext) -> None:
        with lock:
            ran[job.id] += 1
        time.sleep(0.001)

    worker = Worker(app, r, keyspace=keyspace, queues=["outage"], concurrency=2, prefetch=4, poll_interval_s=0.05)
    producer = Producer(r, keyspace=keyspace)
    killer = redis.Redis(connection_pool=redis.ConnectionPool(**r.connection_pool.connection_kwargs))
    ids: list[str] = []
    worker.start()
    try:
        for _ in range(10):
            ids += producer.push_many([JobSpec(name="tick", queue="outage") for _ in range(60)])
            time.sleep(0.02)
            killed = killer.client_kill_filter(_type="normal", skipme=True)
            assert killed >= 1
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and len(_completed(r, keyspace)) < len(ids):
            time.sleep(0.02)
        ids += producer.push_many([JobSpec(name="tick", queue="outage")])
        while time.monotonic() < deadline + 1 and len(_completed(r, keyspace)) < len(ids):
            time.sleep(0.02)
    finally:
        worker.stop(timeout_s=5)
        killer.close()
    completed = _completed(r, keyspace)
    assert set(completed) == set(ids)
    assert max(completed.values()) == 1
    assert r.llen(keyspace.queue("outage")) == 0
    assert r.llen(keyspace.processing("outage", worker.id)) == 0
    assert set(ran) == set(ids)
    assert max(ran.values()) == 1
    assert any("lost Redis" in record.message for record in caplog.records), "the kills never reached the worker"
