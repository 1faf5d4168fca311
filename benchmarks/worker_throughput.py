"""Worker throughput, side by side on one Redis: Zenith's worker (events on and off) and RQ's SimpleWorker.

Each run drains the same number of no-op jobs from a fresh queue with one worker running
one job at a time, and reports jobs per second, Redis round trips per job and the ratios.

    pip install -e ".[dev,bench]"
    python benchmarks/worker_throughput.py --jobs 20000

It uses one Redis database of its own (``--db``, default 15) and refuses to run when that
database holds keys, unless ``--flush`` is given; it empties the database when done.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from zenith_protocol import KeySpace
from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.worker import App, JobContext, Worker, WorkerOptions

sys.path.insert(0, str(Path(__file__).resolve().parent))
client_on_db: Callable[..., redis.Redis] = importlib.import_module("bench_db").client_on_db
noop: Callable[[], None] = importlib.import_module("bench_jobs").noop

PUSH_CHUNK = 1000


class CountingConnection(redis.Connection):
    """Counts packets sent to Redis: one per command, one per pipeline (a round trip each)."""

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


@dataclass
class Result:
    name: str
    jobs: int
    seconds: float
    round_trips: int

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


def counting_client(url: str, db: int) -> redis.Redis:
    return client_on_db(url, db, connection_class=CountingConnection)


def run_zenith(url: str, db: int, jobs: int, *, events: bool) -> Result:
    setup = client_on_db(url, db)
    space = KeySpace(queue_prefix="bench:queue:", console_prefix="bench:console:", zenith_prefix="bench:zenith:")
    producer = Producer(setup, keyspace=space, events=False)
    for start in range(0, jobs, PUSH_CHUNK):
        producer.push_many([JobSpec(name="noop", queue="bench") for _ in range(min(PUSH_CHUNK, jobs - start))])
    app = App()

    @app.handler("noop")
    def _noop(job: JobContext) -> None:
        return None

    options = WorkerOptions(queues=("bench",), concurrency=1, events=events, poll_interval_s=0.01)
    worker = Worker(app, counting_client(url, db), keyspace=space, options=options)
    CountingConnection.sends = 0
    started = time.perf_counter()
    worker.start()
    while worker.processed < jobs:
        time.sleep(0.001)
    seconds = time.perf_counter() - started
    trips = CountingConnection.sends
    worker.stop(timeout_s=10)
    setup.flushdb()
    setup.close()
    return Result(f"zenith worker, events {'on' if events else 'off'}", jobs, seconds, trips)


def run_rq(url: str, db: int, jobs: int) -> Result:
    from rq import Queue, SimpleWorker

    client = counting_client(url, db)
    queue = Queue("bench", connection=client)
    for start in range(0, jobs, PUSH_CHUNK):
        count = min(PUSH_CHUNK, jobs - start)
        queue.enqueue_many([Queue.prepare_data(noop, result_ttl=0) for _ in range(count)])
    worker = SimpleWorker([queue], connection=client)
    CountingConnection.sends = 0
    started = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    seconds = time.perf_counter() - started
    trips = CountingConnection.sends
    client.flushdb()
    return Result("rq SimpleWorker", jobs, seconds, trips)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--db", type=int, default=15, help="a database of its own (tests use 1-13)")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--skip-rq", action="store_true", help="run only the Zenith worker")
    parser.add_argument("--flush", action="store_true", help="empty the database first even if it holds keys")
    args = parser.parse_args(argv)
    check = client_on_db(args.redis, args.db)
    if check.dbsize() and not args.flush:
        print(f"database {args.db} is not empty; pass --flush to empty it or --db to pick another", file=sys.stderr)
        return 2
    check.flushdb()
    runs: list[Callable[[], Result]] = [
        lambda: run_zenith(args.redis, args.db, args.jobs, events=True),
        lambda: run_zenith(args.redis, args.db, args.jobs, events=False),
    ]
    if not args.skip_rq:
        runs.append(lambda: run_rq(args.redis, args.db, args.jobs))
    results = [run() for run in runs]
    report(results)
    return 0


def report(results: list[Result]) -> None:
    rq = next((r for r in results if r.name.startswith("rq")), None)
    print(f"{'worker':<28} {'jobs':>7} {'seconds':>8} {'jobs/s':>9} {'round trips/job':>16} {'vs RQ':>7}")
    for r in results:
        ratio = f"{r.rate / rq.rate:6.1f}x" if rq else "-"
        print(f"{r.name:<28} {r.jobs:>7} {r.seconds:>8.2f} {r.rate:>9.0f} {r.round_trips / r.jobs:>16.2f} {ratio:>7}")
    on = next((r for r in results if r.name.endswith("events on")), None)
    off = next((r for r in results if r.name.endswith("events off")), None)
    if on and off:
        print(f"events cost {100 * (1 - on.rate / off.rate):.1f}% of throughput")


if __name__ == "__main__":
    sys.exit(main())
