"""Jobs for the benchmarks that run workers in processes of their own: RQ's, Celery's and Zenith's
(whose app, ``bench_app.py``, calls these same functions).

This module imports nothing of Zenith's: RQ's worker imports it in the process it forks for
each job, and must not pay for more than the job's own imports. Jobs reach Redis through the
URL in ``BENCH_TASKS_REDIS``; Celery's app exists when ``BENCH_TASKS_CELERY`` is set.
"""

from __future__ import annotations

import os
import time
from functools import cache

import redis

URL_ENV = "BENCH_TASKS_REDIS"
CELERY_ENV = "BENCH_TASKS_CELERY"
LATENCIES = "bench:tasks:latencies"
DONE = "bench:tasks:done"
LOAD_JOB_S = 0.001
"""How long each background job of the loaded pickup runs works."""


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(os.environ[URL_ENV])


def record(pushed_ms: float) -> None:
    """Note the push-to-start time of one measured job (``pushed_ms``: wall clock at its push)."""
    _client().rpush(LATENCIES, f"{time.time() * 1000 - pushed_ms:.3f}")


def busy() -> None:
    """One background job of the loaded pickup runs."""
    time.sleep(LOAD_JOB_S)


def crunch(rounds: int) -> None:
    """CPU-bound work that holds the GIL throughout (``rounds`` of integer arithmetic), then counts itself done."""
    total = 0
    for i in range(rounds):
        total += i * i % 7
    _client().incr(DONE)


def _celery_app() -> object:
    from celery import Celery

    app = Celery("bench_tasks", broker=os.environ[URL_ENV])
    app.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True)
    for task in (record, busy, crunch):
        app.task(name=task.__name__)(task)
    return app


celery = _celery_app() if os.environ.get(URL_ENV) and os.environ.get(CELERY_ENV) else None
