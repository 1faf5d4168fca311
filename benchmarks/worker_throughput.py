"""Worker throughput, side by side on one Redis: Zenith's worker, RQ's and Celery's prefork pool.

Part one drains the same number of no-op jobs from a fresh queue with one worker running one
job at a time in this process (Zenith's with events on and off, alternated ``--rounds`` times, of
which the medians are shown; RQ's ``SimpleWorker`` once), and reports jobs per second, Redis round
trips per job and the ratios.

Part two starts each worker as its users do, in processes of its own, and times how long it
takes to run a batch pushed at once, each job counting itself done in Redis: first jobs that
do nothing else, then CPU-bound jobs (``--cpu-ms`` of pure-Python arithmetic, holding the GIL)
on one and on two processes: ``zenith worker --processes 1|2``, RQ's forking worker alone and
as ``rq worker-pool -n 2``, Celery's prefork pool with 1 and 2 children. Threads cannot
spread such jobs over cores, so ``zenith worker --concurrency 2`` in one process is shown too.

    pip install -e ".[dev,bench]"
    python benchmarks/worker_throughput.py --jobs 20000

It uses one Redis database of its own (``--db``, default 15) and refuses to run when that
database holds keys, unless ``--flush`` is given; it empties the database when done.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
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
bench_db = importlib.import_module("bench_db")
client_on_db: Callable[..., redis.Redis] = bench_db.client_on_db
noop: Callable[[], None] = importlib.import_module("bench_jobs").noop
procs = importlib.import_module("bench_procs")
tasks = importlib.import_module("bench_tasks")

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


def calibrate(cpu_ms: float) -> int:
    """Rounds of ``bench_tasks.crunch``'s loop that take about ``cpu_ms`` here (the fastest of five tries)."""
    rounds = 100_000
    fastest = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for i in range(rounds):
            total += i * i % 7
        fastest = min(fastest, time.perf_counter() - started)
    return max(1, int(rounds * cpu_ms / 1000 / fastest))


@dataclass
class Family:
    """Workers of one kind: how to start one with N processes (or threads), and how to push a batch."""

    name: str
    start: Callable[[int], tuple[list[str], str]]
    push: Callable[[redis.Redis, str, int, int], None]
    env: dict[str, str]


def push_zenith(client: redis.Redis, url: str, count: int, rounds: int) -> None:
    producer = Producer(client, events=False)
    for start in range(0, count, PUSH_CHUNK):
        size = min(PUSH_CHUNK, count - start)
        producer.push_many([JobSpec(name="crunch", properties={"rounds": rounds}, queue="bench")] * size)


def push_rq(client: redis.Redis, url: str, count: int, rounds: int) -> None:
    from rq import Queue

    queue = Queue("bench", connection=client)
    data = [Queue.prepare_data("bench_tasks.crunch", (rounds,), result_ttl=0) for _ in range(count)]
    for start in range(0, count, PUSH_CHUNK):
        queue.enqueue_many(data[start : start + PUSH_CHUNK])


def push_celery(client: redis.Redis, url: str, count: int, rounds: int) -> None:
    from celery import Celery

    app = Celery("bench_producer", broker=url)
    app.conf.update(broker_connection_retry_on_startup=True)
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            app.send_task("crunch", args=[rounds], queue="bench", producer=producer)


def families(url: str) -> list[Family]:
    def zenith(processes: int) -> tuple[list[str], str]:
        return procs.zenith_worker(
            url, "bench", "--processes", str(processes)
        ), f"zenith worker --processes {processes}"

    def zenith_threads(threads: int) -> tuple[list[str], str]:
        return procs.zenith_worker(
            url, "bench", "--concurrency", str(threads)
        ), f"zenith worker --concurrency {threads}"

    def rq(processes: int) -> tuple[list[str], str]:
        name = "rq worker" if processes == 1 else f"rq worker-pool -n {processes}"
        return procs.rq_worker(url, "bench", processes), name

    def celery(processes: int) -> tuple[list[str], str]:
        return procs.celery_worker("bench", processes), f"celery prefork -c {processes}"

    return [
        Family("zenith", zenith, push_zenith, {}),
        Family("zenith threads", zenith_threads, push_zenith, {}),
        Family("rq", rq, push_rq, {}),
        Family("celery", celery, push_celery, {tasks.CELERY_ENV: "1"}),
    ]


def run_family(family: Family, processes: int, client: redis.Redis, url: str, jobs: int, rounds: int) -> Result:
    """Start the workers, let them take a first batch (so every process is up), then time a batch of ``jobs``."""
    command, name = family.start(processes)
    client.flushdb()
    with procs.running(command, {tasks.URL_ENV: url, **family.env}):
        family.push(client, url, 4 * processes, 0)
        while int(client.get(tasks.DONE) or 0) < 4 * processes:
            time.sleep(0.01)
        time.sleep(1.0)  # a second process may still be importing the app
        client.delete(tasks.DONE)
        started = time.perf_counter()
        family.push(client, url, jobs, rounds)
        while int(client.get(tasks.DONE) or 0) < jobs:
            time.sleep(0.002)
        seconds = time.perf_counter() - started
    client.flushdb()
    return Result(name, jobs, seconds, 0)


def run_processes(url: str, client: redis.Redis, jobs: int, cpu_jobs: int, cpu_ms: float, only: str) -> None:
    rounds = calibrate(cpu_ms)
    chosen = [f for f in families(url) if not only or f.name in only.split(",")]
    print(f"\nworkers in processes of their own, {jobs} jobs that only count themselves done:")
    quick = [run_family(f, 1, client, url, jobs, 0) for f in chosen if f.name != "zenith threads"]
    report_processes(quick)
    print(f"\nCPU-bound jobs, {cpu_jobs} of about {cpu_ms:g} ms each, on 1 and 2 processes (threads for one row):")
    heavy = [(run_family(f, 1, client, url, cpu_jobs, rounds), run_family(f, 2, client, url, cpu_jobs, rounds))
             for f in chosen]  # fmt: skip
    report_processes([result for pair in heavy for result in pair])
    for one, two in heavy:
        print(f"{two.name}: {two.rate / one.rate:.2f}x {one.name}")


def report_processes(results: list[Result]) -> None:
    print(f"{'worker':<32} {'jobs':>6} {'seconds':>8} {'jobs/s':>8}")
    for r in results:
        print(f"{r.name:<32} {r.jobs:>6} {r.seconds:>8.2f} {r.rate:>8.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_db.add_database_options(parser, 15)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--skip-rq", action="store_true", help="run only the Zenith worker in part one")
    parser.add_argument(
        "--rounds", type=int, default=5, help="part one: Zenith runs with events on and off, alternated; medians shown"
    )
    parser.add_argument("--part", choices=("1", "2", "both"), default="both", help="in-process, processes, or both")
    parser.add_argument("--process-jobs", type=int, default=1_000, help="do-nothing jobs per worker in part two")
    parser.add_argument("--cpu-jobs", type=int, default=400, help="CPU-bound jobs per worker in part two")
    parser.add_argument("--cpu-ms", type=float, default=20.0, help="CPU time of one CPU-bound job")
    parser.add_argument("--only", default="", help="part two: comma-separated families (zenith, rq, celery, ...)")
    args = parser.parse_args(argv)
    check = client_on_db(args.redis, args.db)
    if bench_db.refuses(check, args):
        return 2
    check.flushdb()
    if args.part in ("1", "both"):
        rounds = max(1, args.rounds)
        on, off, cost = events_on_and_off(args.redis, args.db, args.jobs, rounds)
        report([on, off, *([] if args.skip_rq else [run_rq(args.redis, args.db, args.jobs)])])
        print(f"events cost {cost:.1f}% of throughput (median of {rounds} rounds)")
    if args.part in ("2", "both"):
        url = procs.url_for_db(args.redis, args.db)
        run_processes(url, check, args.process_jobs, args.cpu_jobs, args.cpu_ms, args.only)
    return 0


def events_on_and_off(url: str, db: int, jobs: int, rounds: int) -> tuple[Result, Result, float]:
    """Zenith's worker with events on and off, ``rounds`` rounds of each, alternated: the median run of
    each, and the median of the rounds' events costs (each round's two runs are minutes closer).

    One pair of runs varies by more than the cost it measures (threads, a shared machine), so
    each round's cost is printed too.
    """
    on: list[Result] = []
    off: list[Result] = []
    costs: list[float] = []
    for number in range(rounds):
        first_on = number % 2 == 0
        pair = [run_zenith(url, db, jobs, events=first_on), run_zenith(url, db, jobs, events=not first_on)]
        with_events, without = pair if first_on else pair[::-1]
        on.append(with_events)
        off.append(without)
        costs.append(100 * (1 - with_events.rate / without.rate))
        print(f"round {number + 1}: events cost {costs[-1]:.1f}%", flush=True)
    return _median(on), _median(off), statistics.median(costs)


def _median(results: list[Result]) -> Result:
    return sorted(results, key=lambda result: result.rate)[len(results) // 2]


def report(results: list[Result]) -> None:
    rq = next((r for r in results if r.name.startswith("rq")), None)
    print(f"{'worker':<28} {'jobs':>7} {'seconds':>8} {'jobs/s':>9} {'round trips/job':>16} {'vs RQ':>7}")
    for r in results:
        ratio = f"{r.rate / rq.rate:6.1f}x" if rq else "-"
        print(f"{r.name:<28} {r.jobs:>7} {r.seconds:>8.2f} {r.rate:>9.0f} {r.round_trips / r.jobs:>16.2f} {ratio:>7}")


if __name__ == "__main__":
    sys.exit(main())
