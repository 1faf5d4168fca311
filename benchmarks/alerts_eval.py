"""One alert evaluation of 200 rules over 10,000 queues and 500 pulse nodes: round trips, commands and time.

The data is what the Node system writes (queues of Node-shaped jobs, the Node agent's pulse
reports, a Node consumer heartbeat per queue group); the rules mix every rule type, each scoped by
a glob to about 1% of the queues or one of ten services, so about 100 subjects each. The
evaluation is ``AlertService.evaluate_once`` (read rules, silences, mute windows and states;
gather the snapshot; evaluate; apply) through a client that records its round trips. The first
evaluation discovers (SCAN passes); the next ones reuse the discovery, as a running loop does.

    python benchmarks/alerts_eval.py                  # seeds, then 1 cold + 5 warm evaluations
    python benchmarks/alerts_eval.py --scale 0.1

It uses one Redis database of its own (``--db``, default 15), refuses to run when that database
holds keys unless ``--flush`` is given, and empties it when done.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from zenith_protocol import KeySpace
from zenith_sdk.alerts import AlertService

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
_wire_data = importlib.import_module("wire_data")
node_job: Callable[..., str] = _wire_data.node_job
node_agent_pulse: Callable[..., str] = _wire_data.node_agent_pulse
node_consumer_heartbeat: Callable[..., str] = _wire_data.node_consumer_heartbeat
CountingRedis: type[Any] = importlib.import_module("counting").CountingRedis

SPACE = KeySpace()
TYPES = (
    "backlog",
    "latency",
    "failure",
    "failure_count",
    "failure_ratio",
    "stuck_job",
    "worker_lost",
    "node_cpu",
    "node_ram",
    "node_disk",
    "node_down",
    "schedule_missed",
    "channel_failing",
    "archive_lag",
)
NODE_TYPES = {"node_cpu", "node_ram", "node_disk", "node_down"}
SERVICES = 10
SEED_CHUNK = 5_000


def _rules(count: int) -> list[dict[str, Any]]:
    rules = []
    for index in range(count):
        kind = TYPES[index % len(TYPES)]
        rule: dict[str, Any] = {"id": f"r{index:03d}", "name": f"rule {index}", "type": kind, "threshold": 5}
        if kind in NODE_TYPES:
            rule["service"] = f"svc-{index % SERVICES}"
        elif kind not in ("channel_failing", "archive_lag"):
            rule["queue"] = f"q{index % 100:02d}*"
        rules.append(rule)
    return rules


def seed(client: redis.Redis, queues: int, nodes: int, rules: int, now_ms: int) -> None:
    """Write the queues, pulse nodes, heartbeats and rules."""
    pipe = client.pipeline(transaction=False)
    for index in range(queues):
        name = f"q{index % 100:02d}{index // 100:03d}"
        jobs = [
            node_job(f"{now_ms}-{index:07d}{n}", "work", {}, created_at=now_ms - n * 1000) for n in range(index % 7)
        ]
        if jobs:
            pipe.lpush(SPACE.queue(name), *jobs)
        if index % 50 == 0:
            pipe.lpush(SPACE.failed(name), node_job(f"f-{index}", "work", {}, created_at=now_ms))
        if index % 100 == 0:
            worker = f"worker-{index}"
            pipe.set(SPACE.legacy_worker(worker), node_consumer_heartbeat(worker, [name], now_ms), ex=600)
        if len(pipe) >= SEED_CHUNK:
            pipe.execute()
    for index in range(nodes):
        service = f"svc-{index % SERVICES}"
        node_id = f"web{index}-{4000 + index}"
        pipe.set(SPACE.legacy_pulse(service, node_id), node_agent_pulse(service, node_id, now_ms), ex=600)
    pipe.set(SPACE.alert_rules(), json.dumps(_rules(rules)))
    pipe.execute()


def _one(service: AlertService, counting: Any) -> tuple[float, int, int, int]:
    counting.round_trips.clear()
    started = time.perf_counter()
    report = service.evaluate_once()
    elapsed = time.perf_counter() - started
    commands = sum(len(trip) for trip in counting.round_trips)
    return elapsed, len(counting.round_trips), commands, len(report.evaluation.transitions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL (its database is replaced)")
    parser.add_argument("--db", type=int, default=15, help="database of its own (default 15)")
    parser.add_argument("--flush", action="store_true", help="empty the database first if it holds keys")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 10,000 queues and 500 nodes")
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--warm", type=int, default=5, help="evaluations after the first (default 5)")
    args = parser.parse_args(argv)
    kwargs = {**redis.ConnectionPool.from_url(args.redis).connection_kwargs, "socket_timeout": None, "db": args.db}
    counting = CountingRedis(connection_pool=redis.ConnectionPool(**kwargs))
    if counting.dbsize() and not args.flush:
        print(f"database {args.db} holds keys; pass --flush to empty it", file=sys.stderr)
        return 2
    counting.flushdb()
    queues, nodes = int(10_000 * args.scale), int(500 * args.scale)
    try:
        seed(counting, queues, nodes, args.rules, int(time.time() * 1000))
        service = AlertService(counting, send=False)
        cold = _one(service, counting)
        warm = [_one(service, counting) for _ in range(args.warm)]
        print(f"{args.rules} rules, {queues} queues, {nodes} pulse nodes, {counting.dbsize()} keys")
        print(f"{'evaluation':<12}{'time ms':>10}{'round trips':>13}{'commands':>10}{'transitions':>13}")
        for label, (elapsed, trips, commands, transitions) in [
            ("cold", cold),
            *((f"warm {i + 1}", w) for i, w in enumerate(warm)),
        ]:
            print(f"{label:<12}{elapsed * 1000:>10.1f}{trips:>13}{commands:>10}{transitions:>13}")
        if warm:
            print(
                f"warm median: {statistics.median(w[0] for w in warm) * 1000:.1f} ms, "
                f"{statistics.median(w[1] for w in warm):.0f} round trips"
            )
    finally:
        counting.flushdb()
        counting.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
