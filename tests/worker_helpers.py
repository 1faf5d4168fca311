"""Helpers shared by the tests that run workers: a recording handler, waiting, and reading Redis back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
import redis
from patience import HANG_S
from wire_data import node_job

from zenith_protocol import KeySpace
from zenith_sdk.worker import JobContext, Worker


class Recorder:
    """A handler that records every job it runs (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: list[JobContext] = []

    def __call__(self, job: JobContext) -> None:
        with self.lock:
            self.runs.append(job)

    def ids(self) -> list[str]:
        with self.lock:
            return [job.id for job in self.runs]

    def __len__(self) -> int:
        with self.lock:
            return len(self.runs)


def wait_for(condition: Callable[[], object], *, timeout_s: float = HANG_S, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout_s`` (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def now_ms() -> int:
    return int(time.time() * 1000)


def server_ms(r: redis.Redis) -> int:
    seconds, micros = r.time()
    return seconds * 1000 + micros // 1000


def lrange(r: redis.Redis, key: str) -> list[bytes]:
    """A whole list, newest (left) first."""
    values = r.lrange(key, 0, -1)
    assert all(isinstance(value, bytes) for value in values)
    return [value for value in values if isinstance(value, bytes)]


def zrange_scores(r: redis.Redis, key: str) -> list[tuple[bytes, int]]:
    """A whole sorted set with integer scores, lowest first."""
    out: list[tuple[bytes, int]] = []
    for member, score in cast(list[tuple[bytes, float]], r.zrange(key, 0, -1, withscores=True)):
        assert isinstance(member, bytes)
        out.append((member, int(score)))
    return out


def fields_of(raw: bytes) -> dict[str, Any]:
    parsed = json.loads(raw)
    assert isinstance(parsed, dict)
    return parsed


def make_due(r: redis.Redis, key: str) -> None:
    """Let time pass for a delayed set: every member becomes due now."""
    for member, _score in zrange_scores(r, key):
        r.zadd(key, {member: 0}, xx=True)


def retry_attempts(r: redis.Redis, key: str) -> list[int]:
    """The ``attempts`` of each member of a delayed set."""
    return [fields_of(member)["attempts"] for member, _score in zrange_scores(r, key)]


def idle(r: redis.Redis, space: KeySpace, worker: Worker, *queues: str) -> bool:
    """True once the worker holds nothing fetched from ``queues``."""
    return all(r.llen(space.processing(queue, worker.id)) == 0 for queue in queues)


def dead_worker(r: redis.Redis, space: KeySpace, worker_id: str, jobs: dict[str, list[bytes]], age_ms: int) -> None:
    """A worker whose fetches are in its processing lists (oldest at the right) and whose heartbeat is gone."""
    for queue, raws in jobs.items():
        r.lpush(space.processing(queue, worker_id), *raws)
    r.zadd(space.worker_index(), {worker_id: server_ms(r) - age_ms})
    r.hset(space.worker_queues(), worker_id, json.dumps(list(jobs)))


def node_raws(prefix: str, count: int) -> list[bytes]:
    """``count`` jobs as the Node producer writes them, ids ``<prefix>-0`` ..."""
    return [node_job(f"{prefix}-{n}", "step", {"n": n}, created_at=1).encode() for n in range(count)]
