"""Jobs for ``pickup_latency.py``, importable by each worker it starts (RQ, Celery; Zenith's app is in
``bench_pickup_app.py``).

This module imports nothing of Zenith's: RQ's worker imports it in the process it forks for
each job, and must not pay for more than the job's own imports.

A measured job carries the wall-clock time it was pushed (ms); the first thing it does is
append how long it waited to a Redis list, so every worker is timed the same way: from the
producer's push to the start of the job's own code.
"""

from __future__ import annotations

import os
import time
from functools import cache

import redis

URL_ENV = "PICKUP_BENCH_REDIS"
LATENCIES = "bench:pickup:latencies"
LOAD_JOB_S = 0.001
"""How long each background job of the loaded runs works."""


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(os.environ[URL_ENV])


def record(pushed_ms: float) -> None:
    """Note the push-to-start time of one measured job."""
    _client().rpush(LATENCIES, f"{time.time() * 1000 - pushed_ms:.3f}")


def busy() -> None:
    """One background job of the loaded runs."""
    time.sleep(LOAD_JOB_S)


def _celery_app() -> object:
    from celery import Celery

    url = os.environ[URL_ENV]
    celery = Celery("bench_pickup_jobs", broker=url)
    celery.conf.update(task_ignore_result=True, worker_prefetch_multiplier=1, broker_connection_retry_on_startup=True)
    celery.task(name="pickup")(record)
    celery.task(name="busy")(busy)
    return celery


celery = _celery_app() if os.environ.get(URL_ENV) and os.environ.get("PICKUP_BENCH_CELERY") else None
