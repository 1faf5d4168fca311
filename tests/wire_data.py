"""Redis data laid out exactly as the existing Node.js system writes it (WIRE_FACTS), for tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import redis

from zenith_protocol import KeySpace

NODE_PUSH_ORDER = (
    "id",
    "type",
    "data",
    "className",
    "createdAt",
    "delaySeconds",
    "attempts",
    "maxAttempts",
    "groupId",
    "error",
    "failedAt",
)
"""Field order of the Node producer's single push (WIRE_FACTS section 9)."""

CANONICAL_JOB_ORDER = (*NODE_PUSH_ORDER, "priority", "retryAfterSeconds", "retryMultiplier", "protocolVersion")
"""Field order of a canonical job: the push order, then the fields that path does not write."""


def node_job(job_id: str, name: str, properties: dict[str, object], *, created_at: int, **extra: object) -> str:
    """A job exactly as the Node producer's single push writes it (push field order, compact)."""
    payload: dict[str, object] = {
        "id": job_id,
        "type": "json",
        "data": json.dumps({"job": name, "properties": properties}, separators=(",", ":"), ensure_ascii=False),
        "createdAt": created_at,
        "delaySeconds": 0,
        "attempts": 0,
        "maxAttempts": 3,
    }
    payload.update(extra)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def node_class_job(job_id: str, class_name: str, *, created_at: int) -> str:
    """A ``class`` job as the Node producer writes it."""
    data = json.dumps({"class": class_name, "properties": {"orderId": 42}}, separators=(",", ":"))
    payload = {
        "id": job_id,
        "type": "class",
        "data": data,
        "className": class_name,
        "createdAt": created_at,
        "attempts": 0,
        "maxAttempts": 3,
    }
    return json.dumps(payload, separators=(",", ":"))


def dead_letter_job(job_id: str, *, failed_at: int) -> str:
    """A dead-lettered job: the caller's whole object, className before data, priority and retry fields."""
    payload = {
        "id": job_id,
        "type": "class",
        "className": "App\\Jobs\\SendInvoice",
        "data": json.dumps({"class": "App\\Jobs\\SendInvoice", "properties": {"invoice": "INV-7/2026"}}),
        "createdAt": failed_at - 5000,
        "attempts": 3,
        "maxAttempts": 3,
        "priority": "high",
        "retryAfterSeconds": 1,
        "retryMultiplier": 2,
        "error": "SMTP timeout: connection refused",
        "failedAt": failed_at,
    }
    return json.dumps(payload, separators=(",", ":"))


def iso(ms: int) -> str:
    """ISO-8601 with milliseconds and Z, as Node's Date.toISOString writes it."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def node_consumer_heartbeat(worker_id: str, queues: list[str], ms: int) -> str:
    """The Node consumer's own heartbeat (WIRE_FACTS 3 and 9), compact as JSON.stringify writes it."""
    heartbeat = {
        "id": worker_id,
        "status": "online",
        "hostname": "web-2",
        "pid": 77,
        "uptime": 33,
        "last_ping": iso(ms),
        "queues": queues,
        "metrics": {"cpu": 0.72, "cores": 8, "ram": {"rss": 80, "heapUsed": 40, "total": 16000}},
    }
    return json.dumps(heartbeat, separators=(",", ":"))


def node_agent_pulse(service: str, node_id: str, timestamp_ms: int) -> str:
    """A pulse report as the Node agent writes it (WIRE_FACTS 4 and 9): its field order, compact, no disk."""
    hostname, _, pid = node_id.rpartition("-")
    pulse = {
        "id": node_id,
        "service": service,
        "language": "node",
        "version": "20.11.0",
        "pid": int(pid) if pid.isdigit() else 4242,
        "hostname": hostname or node_id,
        "platform": "linux",
        "cpu": {"system": 12, "process": 3.5, "cores": 8},
        "memory": {
            "system": {"total": 16_000_000_000, "free": 8_000_000_000, "used": 8_000_000_000},
            "process": {"rss": 100_000_000, "heapTotal": 60_000_000, "heapUsed": 40_000_000},
        },
        "runtime": {"uptime": 120.5, "framework": "express"},
        "timestamp": timestamp_ms,
    }
    return json.dumps(pulse, separators=(",", ":"))


@dataclass(frozen=True)
class Seeded:
    """How many entries of each kind :func:`seed_wire_facts` wrote."""

    waiting_jobs: int
    legacy_jobs: int
    keys: int


def seed_wire_facts(r: redis.Redis, space: KeySpace, now_ms: int) -> Seeded:
    """Write one of every structure WIRE_FACTS describes, in its legacy (Node-written) form."""
    q = "emails"
    minute = now_ms // 60_000
    pipe = r.pipeline(transaction=False)
    pipe.lpush(
        space.queue(q),
        node_job("1700000000000-k3j9x2a", "send-welcome", {"to": "zoë@example.com", "path": "/a/b"}, created_at=now_ms),
        node_class_job("6f1c2b9e-2d7a-4c1e-9a57-3f0b1e2d4c5a", "SendReceipt", created_at=now_ms),
        node_job("1700000000001-a0b1c2d", "send-welcome", {"to": "x@example.com"}, created_at=now_ms, groupId="g-1"),
    )
    pipe.lpush(space.lane(q, "critical"), node_job("1700000000002-zzzzzzz", "alert", {}, created_at=now_ms))
    pipe.lpush(space.lane(q, "high"), node_job("1700000000003-yyyyyyy", "alert", {}, created_at=now_ms))
    pipe.lpush(space.lane(q, "low"), node_job("1700000000004-xxxxxxx", "digest", {}, created_at=now_ms))
    pipe.zadd(
        space.delayed(q),
        {node_job("1700000000005-wwwwwww", "reminder", {"n": 1}, created_at=now_ms, delaySeconds=2): now_ms + 2000},
    )
    pipe.lpush(space.failed(q), dead_letter_job("1700000000006-vvvvvvv", failed_at=now_ms))
    pipe.sadd(space.active_set(q), "1700000000007-uuuuuuu")
    pipe.set(space.paused(q), "1")
    pipe.set(space.rate_limit(q, minute), "17", ex=60)
    pipe.sadd(space.group_active(q), "g-1")
    pipe.rpush(space.group_pending(q, "g-1"), node_job("1700000000008-ttttttt", "send-welcome", {}, created_at=now_ms))
    job = node_job("1700000000009-sssssss", "nightly-report", {}, created_at=now_ms)
    pipe.zadd(space.schedules(), {"nightly": now_ms + 60_000})
    pipe.hset(
        space.schedule("nightly"),
        mapping={
            "id": "nightly",
            "cron": "0 3 * * *",
            "queue": q,
            "job": job,
            "nextRun": str(now_ms + 60_000),
            "lastRun": str(now_ms - 86_400_000),
            "enabled": "true",
            "connection": "default",
        },
    )
    pipe.set(space.schedule_lock("nightly", now_ms // 1000), "1", ex=10)
    heartbeat = {
        "id": "worker-console-1",
        "hostname": "web-1",
        "pid": 4242,
        "uptime": 120,
        "memory": {"rss": "100MB", "heapTotal": "60MB", "heapUsed": "N/A"},
        "queues": [q],
        "concurrency": 4,
        "timestamp": iso(now_ms),
        "loadAvg": [0.5, 0.4, 0.3],
    }
    pipe.set(space.worker("worker-console-1"), json.dumps(heartbeat), ex=30)
    pipe.set(space.legacy_worker("worker-a1b2c3"), node_consumer_heartbeat("worker-a1b2c3", [q], now_ms), ex=10)
    stamp = iso(now_ms)
    log_lines = [
        {"level": "warning", "message": "slow job", "workerId": "worker-a1b2c3", "jobId": "j1", "timestamp": stamp},
        {"level": "info", "message": "queue emails paused", "workerId": "console", "queue": q, "timestamp": stamp},
    ]
    pipe.lpush(space.logs_history(), *(json.dumps(line) for line in log_lines))
    pipe.lpush(space.legacy_logs_history(), json.dumps({**log_lines[0], "level": "success"}))
    pipe.set(space.throughput(minute), "12", ex=3600)
    for metric in ("waiting", "delayed", "failed", "workers"):
        pipe.set(space.metric(metric, minute), "3", ex=3600)
    pipe.set(space.legacy_pulse("api", "web-1-4242"), node_agent_pulse("api", "web-1-4242", now_ms), ex=30)
    rules = [
        {"id": "r1", "name": "Failures", "type": "failure", "threshold": 50, "cooldownMinutes": 30},
        {"id": "r2", "name": "Backlog", "type": "backlog", "threshold": 1000, "queue": q, "cooldownMinutes": 60},
    ]
    pipe.set(space.alert_rules(), json.dumps(rules))
    config = {"channels": {"slack": {"enabled": True, "webhookUrl": "http://127.0.0.1:9/hook"}}}
    pipe.set(space.alert_config(), json.dumps(config))
    pipe.set(space.maintenance_config(), json.dumps({"autoCleanup": True, "retentionDays": 30}))
    pipe.execute()
    keys = sum(1 for pattern in space.scan_patterns() for _ in r.scan_iter(match=pattern, count=1000))
    return Seeded(waiting_jobs=6, legacy_jobs=10, keys=keys)
