"""Snapshots for the alert evaluator, read from a real Redis holding what Node and Python writers wrote."""

from __future__ import annotations

import json
import time

import redis
from counting import CountingRedis
from wire_data import node_agent_pulse, node_consumer_heartbeat, node_job

from zenith_protocol import AlertRule, EventType, JobPayload, KeySpace, encode_job
from zenith_sdk.alerts.snapshot import SnapshotGatherer
from zenith_sdk.events import EventEmitter, job_event

MINUTE_MS = 60_000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _rule(rule_id: str, kind: str, queue: str | None = None, **extra: object) -> AlertRule:
    return AlertRule.model_validate(
        {"id": rule_id, "name": rule_id, "type": kind, "threshold": 1, "queue": queue, **extra}
    )


ALL_RULES = [
    _rule("backlog", "backlog"),
    _rule("latency", "latency", "em*"),
    _rule("failures", "failure_count", "*", windowMinutes=5),
    _rule("ratio", "failure_ratio", windowMinutes=10),
    _rule("stuck", "stuck_job", "emails"),
    _rule("workers", "worker_lost", "emails"),
    _rule("cpu", "node_cpu"),
    _rule("late", "schedule_missed"),
    _rule("channel", "channel_failing"),
    _rule("archive", "archive_lag"),
]


def test_a_snapshot_of_node_written_data(r: redis.Redis, keyspace: KeySpace) -> None:
    now = _now_ms()
    space = keyspace
    # Node producer: oldest job (right end) 90 s old in the base list, 30 s old in the high lane.
    r.lpush(space.queue("emails"), node_job("1-a", "send", {}, created_at=now - 90_000))
    r.lpush(space.queue("emails"), node_job("2-b", "send", {}, created_at=now - 10_000))
    r.lpush(space.lane("emails", "high"), node_job("3-c", "send", {}, created_at=now - 30_000))
    r.lpush(space.failed("emails"), node_job("4-d", "send", {}, created_at=now))
    r.lpush(space.queue("reports"), "not json at all")
    r.set(space.legacy_worker("worker-a1"), node_consumer_heartbeat("worker-a1", ["emails"], now), ex=10)
    r.set(space.legacy_pulse("api", "web-1-42"), node_agent_pulse("api", "web-1-42", now), ex=30)
    r.zadd(space.schedules(), {"nightly": now - 120_000})
    r.hset(space.schedule("nightly"), mapping={"id": "nightly", "queue": "reports", "cron": "0 3 * * *"})
    r.hset(space.alerts_channels(), "slack", json.dumps({"consecutiveFailures": 3}))
    r.xadd(space.events(), {"event": "{}"})
    r.xgroup_create(space.events(), "archive", id="0")
    # Python worker events: 2 failures and 1 completion in the last minutes, 1 failure 20 minutes ago.
    emitter = EventEmitter(r, keyspace=space)
    emitter.emit(job_event(EventType.FAILED, "emails", "j1", error="x", attempt=1, timestamp_ms=now - 20 * MINUTE_MS))
    job = JobPayload.create("send", {})
    emitter.emit(
        job_event(EventType.FAILED, "emails", "j2", error="x", attempt=1, timestamp_ms=now - 60_000),
        job_event(EventType.FAILED, "emails", "j3", error="x", attempt=1, timestamp_ms=now - 1000),
        job_event(EventType.COMPLETED, "emails", "j4", attempt=1, worker_id="w", timestamp_ms=now - 1000),
        job_event(EventType.STARTED, "emails", job, attempt=1, worker_id="w", timestamp_ms=now - 3_000_000),
    )
    r.lpush(space.processing("emails", "w"), encode_job(job))

    snapshot = SnapshotGatherer(r, keyspace=space).gather(ALL_RULES, now_ms=now)

    assert snapshot.queues is not None
    emails = snapshot.queues["emails"]
    assert (emails.waiting, emails.failed, emails.workers) == (3, 1, 1)
    assert emails.oldest_waiting_age_s == 90.0
    assert emails.failed_in_window == {5: 2, 10: 2}
    assert emails.completed_in_window == {5: 1, 10: 1}
    assert emails.longest_active_s == 3000.0  # from its started event, older than every failure window
    assert snapshot.queues["reports"].oldest_waiting_age_s is None  # its only job has no createdAt
    assert snapshot.workers_total == 1
    assert snapshot.nodes is not None and snapshot.nodes["api/web-1-42"].cpu_percent == 12
    assert snapshot.nodes["api/web-1-42"].ram_percent == 50
    assert snapshot.schedules is not None and snapshot.schedules["nightly"].late_s == 120.0
    assert snapshot.schedules["nightly"].queue == "reports"
    assert snapshot.channels == {"slack": 3}
    assert snapshot.archive_lag == {"archive": 6}  # every entry waits for the archive


def test_parts_no_rule_needs_are_not_read(r: redis.Redis, keyspace: KeySpace) -> None:
    snapshot = SnapshotGatherer(r, keyspace=keyspace).gather([_rule("b", "backlog")])

    assert snapshot.queues == {}
    assert (snapshot.nodes, snapshot.schedules, snapshot.channels, snapshot.archive_lag) == (None, None, None, None)


def test_discovery_is_reused_until_an_index_changes(counting: CountingRedis, keyspace: KeySpace) -> None:
    counting.lpush(keyspace.queue("a"), node_job("1-a", "x", {}, created_at=_now_ms()))
    gatherer = SnapshotGatherer(counting, keyspace=keyspace, rediscover_every=100)
    rules = [_rule("b", "backlog"), _rule("w", "worker_lost")]

    gatherer.gather(rules)
    counting.round_trips.clear()
    second = gatherer.gather(rules)

    assert gatherer.discoveries == 1
    assert not any(args[0] == "SCAN" for trip in counting.round_trips for args in trip)
    assert len(counting.round_trips) <= 4, counting.round_trips
    assert second.queues is not None and set(second.queues) == {"a"}
    counting.sadd(keyspace.queue_index(), "b")
    gatherer.gather(rules)  # sees the index change
    third = gatherer.gather(rules)
    assert gatherer.discoveries == 2
    assert third.queues is not None and set(third.queues) == {"a", "b"}


def test_a_queue_empty_when_discovered_is_seen_filling_up(r: redis.Redis, keyspace: KeySpace) -> None:
    r.sadd(keyspace.queue_index(), "mail")  # registered, no job yet: discovery finds no list
    gatherer = SnapshotGatherer(r, keyspace=keyspace, rediscover_every=100)
    rules = [_rule("b", "backlog"), _rule("lat", "latency", "mail")]
    first = gatherer.gather(rules)
    assert first.queues is not None and first.queues["mail"].waiting == 0

    r.lpush(keyspace.lane("mail", "high"), node_job("1-a", "x", {}, created_at=_now_ms() - 20_000))
    r.lpush(keyspace.queue("mail"), node_job("2-b", "x", {}, created_at=_now_ms()))
    r.lpush(keyspace.failed("mail"), node_job("3-c", "x", {}, created_at=_now_ms()))
    later = gatherer.gather(rules)

    assert gatherer.discoveries == 1  # the same discovery: the new lists are read all the same
    assert later.queues is not None
    reading = later.queues["mail"]
    assert (reading.waiting, reading.failed) == (2, 1)
    assert reading.oldest_waiting_age_s is not None and reading.oldest_waiting_age_s >= 19


def test_a_vanished_node_stays_in_the_snapshot_as_stale(r: redis.Redis, keyspace: KeySpace) -> None:
    now = _now_ms()
    r.set(keyspace.pulse("api", "n1"), node_agent_pulse("api", "n1", now), ex=30)
    gatherer = SnapshotGatherer(r, keyspace=keyspace)
    rules = [_rule("down", "node_down")]
    assert gatherer.gather(rules, now_ms=now).nodes is not None

    r.delete(keyspace.pulse("api", "n1"))
    later = gatherer.gather(rules, now_ms=now + 90_000)

    assert later.nodes is not None
    assert (later.nodes["api/n1"].last_seen_ms, later.nodes["api/n1"].stale) == (now, True)


def test_an_unreachable_redis_gives_unread_parts_not_an_error() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)

    snapshot = SnapshotGatherer(client).gather(ALL_RULES)

    assert snapshot.queues is None and snapshot.nodes is None and snapshot.schedules is None
