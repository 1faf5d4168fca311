"""Push-to-start latency, side by side on one Redis: Zenith's worker, RQ's worker and Celery's prefork pool.

Each worker runs as its users start it, in a process of its own, one job at a time. Measured
jobs are pushed one at a time, each 20 to 60 ms after the previous one started, first to an
idle worker and then while a background producer pushes 20 jobs a second of 1 ms work each
("under load": a measured job may wait behind one of them); each job records how long after
its push its own code started (``bench_tasks.py``).

Zenith is measured for a job pushed as the Node producer pushes it (a bare ``LPUSH`` onto the
base list, no signal), as its own producer pushes it, pushed by its producer onto the
``critical`` lane (announced on the wake channel), and, for reference, with ``--no-wake``
(the worker polls, backing off up to its 0.5 s poll interval).

    pip install -e ".[bench]"
    python benchmarks/pickup_latency.py --jobs 300

It uses one Redis database of its own (``--db``, default 15), refuses to run when that
database holds keys unless ``--flush`` is given, and empties it between runs and when done.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from zenith_sdk.producer import Producer

sys.path.insert(0, str(Path(__file__).resolve().parent))
bench_db = importlib.import_module("bench_db")
client_on_db: Callable[..., redis.Redis] = bench_db.client_on_db
procs = importlib.import_module("bench_procs")
tasks = importlib.import_module("bench_tasks")

QUEUE = "pickup"
LOAD_PER_S = 20
GAP_S = (0.02, 0.06)
"""Pause after a measured job started before the next is pushed (the worker goes idle again)."""
START_TIMEOUT_S = 30.0
Push = Callable[[str, float], None]
"""Pushes one job: its name (``record`` or ``busy``) and, for ``record``, the push time in ms."""


@dataclass
class Contender:
    name: str
    command: list[str]
    push: Callable[[redis.Redis, str], Push]
    env: dict[str, str]


@dataclass
class Result:
    name: str
    scenario: str
    latencies: list[float]

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def node_push(client: redis.Redis, url: str) -> Push:
    """A bare LPUSH of the JSON the Node producer writes: no signal of any kind."""

    def push(name: str, at: float) -> None:
        data = json.dumps({"job": name, "properties": {"at": at}}, separators=(",", ":"))
        payload = {"id": str(uuid.uuid4()), "type": "json", "data": data, "createdAt": int(at)}
        client.lpush(f"queue:{QUEUE}", json.dumps({**payload, "delaySeconds": 0, "attempts": 0, "maxAttempts": 3}))

    return push


def producer_push(priority: str | None) -> Callable[[redis.Redis, str], Push]:
    def make(client: redis.Redis, url: str) -> Push:
        producer = Producer(client)

        def push(name: str, at: float) -> None:
            producer.push(name, {"at": at}, queue=QUEUE, priority=priority)

        return push

    return make


def rq_push(client: redis.Redis, url: str) -> Push:
    from rq import Queue

    queue = Queue(QUEUE, connection=client)

    def push(name: str, at: float) -> None:
        queue.enqueue(f"bench_tasks.{name}", *([at] if name == "record" else []), result_ttl=0)

    return push


def celery_push(client: redis.Redis, url: str) -> Push:
    from celery import Celery

    app = Celery("bench_pickup_producer", broker=url)
    app.conf.update(broker_connection_retry_on_startup=True)

    def push(name: str, at: float) -> None:
        app.send_task(name, args=[at] if name == "record" else [], queue=QUEUE)

    return push


def contenders(url: str) -> list[Contender]:
    zenith = procs.zenith_worker(url, QUEUE)
    celery_env = {tasks.CELERY_ENV: "1"}
    return [
        Contender("zenith, Node LPUSH", zenith, node_push, {}),
        Contender("zenith, its producer", zenith, producer_push(None), {}),
        Contender("zenith, critical lane", zenith, producer_push("critical"), {}),
        Contender("zenith --no-wake", [*zenith, "--no-wake"], node_push, {}),
        Contender("rq worker (forks per job)", procs.rq_worker(url, QUEUE), rq_push, {}),
        Contender("celery prefork, 1 process", procs.celery_worker(QUEUE), celery_push, celery_env),
    ]


def measure(client: redis.Redis, push: Push, jobs: int, *, load: bool) -> list[float]:
    """Push ``jobs`` measured jobs one at a time, each once the previous one has started."""
    client.delete(tasks.LATENCIES)
    stop = threading.Event()

    def background() -> None:
        while not stop.wait(1 / LOAD_PER_S):
            push("busy", 0)

    loader = threading.Thread(target=background, daemon=True)
    if load:
        loader.start()
    try:
        for n in range(1, jobs + 1):
            push("record", time.time() * 1000)
            deadline = time.monotonic() + START_TIMEOUT_S
            while client.llen(tasks.LATENCIES) < n and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(random.uniform(*GAP_S))
    finally:
        stop.set()
        if load:
            loader.join()
    return [float(value) for value in client.lrange(tasks.LATENCIES, 0, -1)]


def run(contender: Contender, client: redis.Redis, url: str, jobs: int) -> list[Result]:
    client.flushdb()
    push = contender.push(client, url)
    with procs.running(contender.command, {tasks.URL_ENV: url, **contender.env}):
        while len(measure(client, push, 1, load=False)) < 1:  # the worker is up once one job ran
            pass
        idle = measure(client, push, jobs, load=False)
        loaded = measure(client, push, jobs, load=True)
    client.flushdb()
    return [Result(contender.name, "idle", idle), Result(contender.name, "under load", loaded)]


def report(results: list[Result], jobs: int) -> None:
    print(f"{'worker':<28} {'scenario':<11} {'jobs':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
    for result in results:
        missing = jobs - len(result.latencies)
        lost = f"  ({missing} not started within {START_TIMEOUT_S:g} s)" if missing else ""
        p50, p90, p99 = (result.percentile(f) for f in (0.5, 0.9, 0.99))
        figures = f"{len(result.latencies):>5} {p50:>8.1f} {p90:>8.1f} {p99:>8.1f}"
        print(f"{result.name:<28} {result.scenario:<11} {figures}{lost}")
    rq = {r.scenario: r for r in results if r.name.startswith("rq")}
    for result in results:
        if result.name.startswith("zenith, Node") and result.scenario in rq:
            ratio = rq[result.scenario].percentile(0.5) / result.percentile(0.5)
            print(f"{result.scenario}: RQ's p50 is {ratio:.1f}x Zenith's (Node LPUSH)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_db.add_database_options(parser, 15)
    parser.add_argument("--jobs", type=int, default=300, help="measured jobs per worker and scenario")
    parser.add_argument("--only", default="", help="comma-separated name prefixes of the workers to run")
    args = parser.parse_args(argv)
    client = client_on_db(args.redis, args.db)
    if bench_db.refuses(client, args):
        return 2
    url = procs.url_for_db(args.redis, args.db)
    chosen = [c for c in contenders(url) if not args.only or any(c.name.startswith(p) for p in args.only.split(","))]
    results: list[Result] = []
    for contender in chosen:
        results.extend(run(contender, client, url, args.jobs))
    report(results, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
