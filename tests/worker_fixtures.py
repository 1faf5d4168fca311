"""Fixtures for the tests that run workers and producers on the test's key space (a plugin of conftest)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from patience import HANG_S

from zenith_protocol import KeySpace
from zenith_sdk.producer import Producer
from zenith_sdk.worker import App, Worker, WorkerOptions

StartWorker = Callable[..., Worker]


@pytest.fixture
def gate() -> threading.Event:
    """Blocked handlers wait on this; the worker fixture opens it before stopping workers."""
    return threading.Event()


@pytest.fixture
def start_worker(r: redis.Redis, keyspace: KeySpace, gate: threading.Event) -> Iterator[StartWorker]:
    """Starts in-process workers on the test's key space; each is stopped (and its pool closed) afterwards."""
    workers: list[Worker] = []

    def start(app: App, **options: Any) -> Worker:
        options.setdefault("poll_interval_s", 0.05)
        options.setdefault("shutdown_timeout_s", 2.0)
        worker = Worker(app, r, keyspace=keyspace, options=WorkerOptions(**options))
        workers.append(worker)
        worker.start()
        return worker

    yield start
    gate.set()
    for worker in workers:
        worker.request_stop(force=True)
        worker.stop(timeout_s=HANG_S)
        worker.client.connection_pool.disconnect()


@pytest.fixture
def producer(r: redis.Redis, keyspace: KeySpace) -> Producer:
    return Producer(r, keyspace=keyspace)
