"""The console's overview API under load: requests/s, p50/p95 latency, and what it costs Redis.

1,000 queues of Node-shaped data (waiting, delayed and dead-lettered jobs in each) are seeded,
then ``zenith console`` serves them from a process of its own (uvicorn, as a person runs it) and
1 and then 20 concurrent clients call ``GET /api/overview`` for ``--seconds`` each. Redis
commands per second come from ``INFO stats`` ``total_commands_processed`` deltas over each run.
The overview is computed at most once per interval whoever asks (single flight), so 20 clients
should cost Redis about what one does.

    redis-server --port 6404 --save "" --appendonly no --daemonize yes
    python benchmarks/console_api.py                      # redis://127.0.0.1:6404, database 15
    python benchmarks/console_api.py --seconds 10 --clients 1 5 20

It uses one Redis database of its own (``--db``), refuses to run when that database holds keys
unless ``--flush`` is given, and empties it when done.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
_wire_data = importlib.import_module("wire_data")
dead_letter_job: Callable[..., str] = _wire_data.dead_letter_job
node_job: Callable[..., str] = _wire_data.node_job
sys.path.insert(0, str(Path(__file__).resolve().parent))
client_on_db: Callable[..., redis.Redis] = importlib.import_module("bench_db").client_on_db

_URL_LINE = re.compile(r"(http://\S+/)\s*$")
_STARTUP_S = 60.0


@dataclass(frozen=True)
class Run:
    """One load run: how many clients, what they got, what Redis did meanwhile."""

    clients: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    redis_commands: int

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def seed(client: redis.Redis, queues: int) -> None:
    """``queues`` queues, each with 5 waiting, 2 delayed and 3 dead-lettered Node-shaped jobs."""
    now_ms = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    for index in range(queues):
        name = f"bench-{index:04d}"
        waiting = [node_job(f"{name}-w{n}", "send-email", {"n": n}, created_at=now_ms) for n in range(5)]
        pipe.lpush(f"queue:{name}", *waiting)
        delayed = {
            node_job(f"{name}-d{n}", "send-email", {"n": n}, created_at=now_ms): now_ms + 3_600_000 for n in range(2)
        }
        pipe.zadd(f"queue:{name}:delayed", delayed)
        failed = [dead_letter_job(f"{name}-f{n}", failed_at=now_ms - n) for n in range(3)]
        pipe.lpush(f"queue:{name}:failed", *failed)
        if index % 100 == 99:
            pipe.execute()
    pipe.execute()


def start_console(url: str, interval_s: float) -> tuple[subprocess.Popen[str], str]:
    """``zenith console`` on a free port, as a process of its own; returns it and its URL."""
    env = {"ZENITH_OVERVIEW_INTERVAL_S": str(interval_s), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "zenith_sdk.cli", "console", "--port", "0", "--no-access-log", "--redis", url]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + _STARTUP_S
    for line in process.stdout:
        found = _URL_LINE.search(line)
        if found:
            return process, found.group(1)
        if time.monotonic() > deadline:
            break
    process.kill()
    raise RuntimeError(f"zenith console printed no URL (exit status {process.poll()})")


async def _client(http: httpx.AsyncClient, until: float, latencies: list[float], errors: list[int]) -> None:
    while time.perf_counter() < until:
        began = time.perf_counter()
        response = await http.get("api/overview")
        if response.status_code == 200:
            latencies.append((time.perf_counter() - began) * 1000)
        else:
            errors.append(response.status_code)


async def _load(base: str, clients: int, seconds: float) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    errors: list[int] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as http:
        await http.get("api/overview")  # the first computation is not part of the run
        began = time.perf_counter()
        await asyncio.gather(*(_client(http, began + seconds, latencies, errors) for _ in range(clients)))
        return latencies, errors, time.perf_counter() - began


def measure(base: str, stats: redis.Redis, clients: int, seconds: float) -> Run:
    before = int(stats.info("stats")["total_commands_processed"])
    latencies, errors, elapsed = asyncio.run(_load(base, clients, seconds))
    after = int(stats.info("stats")["total_commands_processed"])
    # The INFO call that read `before` is counted in `after`; the warm-up request's reads are too.
    return Run(clients, len(latencies), len(errors), elapsed, latencies, after - before - 1)


def _print(runs: list[Run], queues: int, interval_s: float) -> None:
    print(f"GET /api/overview, {queues:,} queues, overview interval {interval_s:g} s")
    print(f"{'clients':>7} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6} {'Redis cmd/s':>12}")
    for run in runs:
        print(
            f"{run.clients:>7} {run.requests:>9,} {run.requests / run.seconds:>8.0f} {run.percentile(0.5):>8.1f} "
            f"{run.percentile(0.95):>8.1f} {run.errors:>6} {run.redis_commands / run.seconds:>12,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--redis", default="redis://127.0.0.1:6404/0", help="the benchmark's own Redis")
    parser.add_argument("--db", type=int, default=15, help="database of its own (emptied when done)")
    parser.add_argument("--flush", action="store_true", help="empty the database first if it holds keys")
    parser.add_argument("--queues", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load run")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--interval", type=float, default=2.0, help="overview interval of the console (s)")
    args = parser.parse_args()
    client = client_on_db(args.redis, args.db)
    if client.dbsize() and not args.flush:
        raise SystemExit(f"database {args.db} of {args.redis} holds keys; pass --flush to empty it, or --db")
    client.flushdb()
    base_url = args.redis.rsplit("/", 1)[0]
    process = None
    try:
        seed(client, args.queues)
        process, console_url = start_console(f"{base_url}/{args.db}", args.interval)
        runs = [measure(console_url, client, clients, args.seconds) for clients in args.clients]
        _print(runs, args.queues, args.interval)
    finally:
        if process is not None:
            process.terminate()
            process.wait()
        client.flushdb()
        client.close()


if __name__ == "__main__":
    main()
