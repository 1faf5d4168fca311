"""``Producer``: what a push writes, byte for byte, and that both consumers (Node and ours) read it."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from counting import CountingRedis
from event_stream import stream_events
from node_consumer import NodeConsumer, NodeJob
from wire_data import CANONICAL_JOB_ORDER, node_class_job, node_job
from worker_helpers import lrange, now_ms, wait_for, zrange_scores

from zenith_protocol import (
    ConfigError,
    EventType,
    JobType,
    KeySpace,
    decode_job,
    decode_log,
    encode_job,
)
from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.scripts import scripts_for
from zenith_sdk.worker import App, JobContext, Worker

# -- helpers ---------------------------------------------------------------------------------------


def warm_scripts(client: CountingRedis) -> None:
    """Load the scripts (so a call is one round trip, not NOSCRIPT + load + retry) and forget that round trip."""
    scripts_for(client).load()
    client.round_trips.clear()


def all_keys(r: redis.Redis, space: KeySpace) -> list[bytes]:
    return [key for pattern in space.scan_patterns() for key in r.scan_iter(match=pattern, count=1000)]


def fields_of(raw: bytes) -> dict[str, Any]:
    parsed = json.loads(raw)
    assert isinstance(parsed, dict)
    return parsed


# -- what one push writes --------------------------------------------------------------------------


def test_push_returns_the_id_of_one_canonical_payload(r: redis.Redis, keyspace: KeySpace, producer: Producer) -> None:
    properties = {"to": "zoë@example.com", "path": "/a/b", "n": 2, "nested": {"list": [1, "ü"]}}
    before = now_ms()

    job_id = producer.push("send-welcome", properties, queue="emails")

    after = now_ms()
    (raw,) = lrange(r, keyspace.queue("emails"))
    assert uuid.UUID(job_id)
    job = decode_job(raw)
    assert job.id == job_id
    assert job.name == "send-welcome"
    assert job.properties == properties
    assert raw.decode() == encode_job(job)
    fields = fields_of(raw)
    assert raw == json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    assert "zoë".encode() in raw and b"\\u" not in raw and b"\\/" not in raw
    assert list(fields) == ["id", "type", "data", "createdAt", "attempts", "protocolVersion"]
    assert fields["type"] == "json"
    assert fields["data"] == json.dumps(
        {"job": "send-welcome", "properties": properties}, separators=(",", ":"), ensure_ascii=False
    )
    assert fields["attempts"] == 0
    assert fields["protocolVersion"] == 2
    assert before <= fields["createdAt"] <= after


def test_push_many_returns_the_ids_in_push_order(r: redis.Redis, keyspace: KeySpace, producer: Producer) -> None:
    specs = [JobSpec(name="resize", properties={"n": n}, queue="images") for n in range(5)]

    ids = producer.push_many(specs)

    assert len(ids) == 5 and len(set(ids)) == 5
    oldest_first = [decode_job(raw) for raw in reversed(lrange(r, keyspace.queue("images")))]
    assert [job.id for job in oldest_first] == ids
    assert [job.properties["n"] for job in oldest_first] == list(range(5))


def test_push_many_of_nothing_writes_nothing(r: redis.Redis, keyspace: KeySpace, producer: Producer) -> None:
    assert producer.push_many([]) == []
    assert all_keys(r, keyspace) == []


def test_every_option_is_written_in_push_field_order(r: redis.Redis, keyspace: KeySpace, producer: Producer) -> None:
    common: dict[str, Any] = {"queue": "billing", "job_type": JobType.CLASS, "priority": "high", "max_attempts": 5}
    common.update(retry_after_s=5, retry_multiplier=3)
    grouped_id = producer.push(
        "App\\Jobs\\SendInvoice",
        {"invoice": "INV-7/2026"},
        job_id="1700000000000-k3j9x2a",
        group_id="tenant-9",
        **common,
    )
    delayed_id = producer.push("App\\Jobs\\SendInvoice", {"invoice": "INV-8/2026"}, delay_s=2, **common)

    assert grouped_id == "1700000000000-k3j9x2a"
    (grouped,) = lrange(r, keyspace.lane("billing", "high"))
    ((delayed, _score),) = zrange_scores(r, keyspace.delayed("billing", "high"))
    for raw, absent in ((grouped, {"delaySeconds"}), (delayed, {"groupId"})):
        fields = fields_of(raw)
        assert list(fields) == [key for key in CANONICAL_JOB_ORDER if key in fields]
        assert set(fields) == set(CANONICAL_JOB_ORDER) - {"error", "failedAt"} - absent
        assert fields["type"] == "class"
        assert fields["className"] == "App\\Jobs\\SendInvoice"
        assert (fields["attempts"], fields["maxAttempts"], fields["priority"]) == (0, 5, "high")
        assert (fields["retryAfterSeconds"], fields["retryMultiplier"]) == (5, 3)
        assert decode_job(raw).name == "App\\Jobs\\SendInvoice"
    assert json.loads(fields_of(grouped)["data"]) == {
        "class": "App\\Jobs\\SendInvoice",
        "properties": {"invoice": "INV-7/2026"},
    }
    assert fields_of(grouped)["groupId"] == "tenant-9"
    assert (fields_of(delayed)["id"], fields_of(delayed)["delaySeconds"]) == (delayed_id, 2)


@pytest.mark.parametrize("priority", ["critical", "high", "low"])
def test_a_named_priority_selects_its_lane(
    r: redis.Redis, keyspace: KeySpace, producer: Producer, priority: str
) -> None:
    producer.push("alert", queue="ops", priority=priority)

    (raw,) = lrange(r, keyspace.lane("ops", priority))
    assert fields_of(raw)["priority"] == priority
    others = [lane for lane in keyspace.lanes_in_poll_order("ops") if lane != keyspace.lane("ops", priority)]
    assert [r.llen(lane) for lane in others] == [0, 0, 0]


@pytest.mark.parametrize("priority", ["normal", "urgent", 5, 0])
def test_other_priorities_stay_on_the_base_queue_with_the_field_kept(
    r: redis.Redis, keyspace: KeySpace, producer: Producer, priority: str | int
) -> None:
    producer.push("alert", queue="ops", priority=priority)

    (raw,) = lrange(r, keyspace.queue("ops"))
    assert fields_of(raw)["priority"] == priority
    assert [r.llen(keyspace.lane("ops", lane)) for lane in ("critical", "high", "low")] == [0, 0, 0]


def test_no_priority_writes_no_priority_field(r: redis.Redis, keyspace: KeySpace, producer: Producer) -> None:
    producer.push("alert", queue="ops")

    (raw,) = lrange(r, keyspace.queue("ops"))
    assert "priority" not in fields_of(raw)


@pytest.mark.parametrize(("delay_s", "delay_ms"), [(30, 30_000), (1.5, 1_500), (0.25, 250)])
def test_a_delayed_job_goes_to_the_delayed_set_scored_by_its_due_time(
    r: redis.Redis, keyspace: KeySpace, producer: Producer, delay_s: float, delay_ms: int
) -> None:
    before = now_ms()

    job_id = producer.push("remind", {"n": 1}, queue="emails", delay_s=delay_s)

    after = now_ms()
    ((raw, score),) = zrange_scores(r, keyspace.delayed("emails"))
    fields = fields_of(raw)
    assert fields["id"] == job_id
    assert fields["delaySeconds"] == delay_s
    assert before + delay_ms <= score <= after + delay_ms
    assert score == fields["createdAt"] + delay_ms
    assert [r.llen(lane) for lane in keyspace.lanes_in_poll_order("emails")] == [0, 0, 0, 0]


def test_a_delayed_job_with_a_priority_waits_in_its_lanes_delayed_set(
    r: redis.Redis, keyspace: KeySpace, producer: Producer
) -> None:
    producer.push("alert", queue="ops", priority="critical", delay_s=60)
    producer.push("alert", queue="ops", priority="urgent", delay_s=60)  # names no polled lane: the base one

    ((raw, _score),) = zrange_scores(r, keyspace.delayed("ops", "critical"))
    assert fields_of(raw)["priority"] == "critical"
    ((base, _score),) = zrange_scores(r, keyspace.delayed("ops"))
    assert fields_of(base)["priority"] == "urgent"
    assert r.llen(keyspace.lane("ops", "critical")) == 0


def test_a_zero_delay_pushes_the_job_at_once_without_delay_field(
    r: redis.Redis, keyspace: KeySpace, producer: Producer
) -> None:
    producer.push("remind", queue="emails", delay_s=0)

    (raw,) = lrange(r, keyspace.queue("emails"))
    assert "delaySeconds" not in fields_of(raw)
    assert r.zcard(keyspace.delayed("emails")) == 0


# -- round trips, events, index --------------------------------------------------------------------


def test_push_many_is_one_round_trip(counting: CountingRedis, keyspace: KeySpace) -> None:
    producer = Producer(counting, keyspace=keyspace)
    warm_scripts(counting)
    specs = [
        JobSpec(name="a", queue="q1"),
        JobSpec(name="b", queue="q2", priority="critical"),
        JobSpec(name="c", queue="q1", delay_s=10),
        *(JobSpec(name="bulk", properties={"n": n}, queue="q2") for n in range(40)),
    ]

    ids = producer.push_many(specs)

    assert len(ids) == 43
    assert len(counting.round_trips) == 1
    (commands,) = counting.round_trips
    pushes = [
        args for args in commands if args[0] in ("LPUSH", "ZADD") and str(args[1]).startswith(keyspace.queue_prefix)
    ]
    assert len(pushes) == 43
    assert counting.xlen(keyspace.events()) == 43
    assert counting.llen(keyspace.queue("q2")) == 40


def test_push_is_one_round_trip(counting: CountingRedis, keyspace: KeySpace) -> None:
    producer = Producer(counting, keyspace=keyspace)
    warm_scripts(counting)

    producer.push("a", queue="q1")

    assert len(counting.round_trips) == 1


def test_each_push_adds_an_enqueued_event_with_the_payload(
    r: redis.Redis, keyspace: KeySpace, producer: Producer
) -> None:
    first, second = producer.push_many(
        [JobSpec(name="resize", properties={"w": 1}, queue="images"), JobSpec(name="remind", delay_s=5)]
    )

    events = stream_events(r, keyspace)
    assert [(e.type, e.job_id, e.queue, e.job_name) for e in events] == [
        (EventType.ENQUEUED, first, "images", "resize"),
        (EventType.ENQUEUED, second, "default", "remind"),
    ]
    (queued,) = lrange(r, keyspace.queue("images"))
    ((delayed, _score),) = zrange_scores(r, keyspace.delayed("default"))
    assert events[0].payload == queued.decode()
    assert events[1].payload == delayed.decode()
    assert events[0].enqueued_at_ms == decode_job(queued).created_at_ms
    assert all(event.protocol_version == 2 for event in events)
    history = [decode_log(line) for line in lrange(r, keyspace.logs_history())]
    assert {entry.job_id for entry in history} == {first, second}


def test_a_push_after_redis_lost_its_scripts_writes_the_job_once_and_its_event(
    r: redis.Redis, keyspace: KeySpace, producer: Producer
) -> None:
    producer.push("warm", queue="q1")
    r.script_flush()

    job_id = producer.push("cold", {"n": 1}, queue="q1")

    assert [decode_job(raw).id for raw in lrange(r, keyspace.queue("q1"))][0] == job_id
    assert r.llen(keyspace.queue("q1")) == 2
    assert [(e.type, e.job_name) for e in stream_events(r, keyspace)] == [
        (EventType.ENQUEUED, "warm"),
        (EventType.ENQUEUED, "cold"),
    ]


def test_a_producer_without_events_writes_only_the_jobs(r: redis.Redis, keyspace: KeySpace) -> None:
    Producer(r, keyspace=keyspace, events=False).push("a", queue="q1")

    assert r.exists(keyspace.events()) == 0
    assert r.exists(keyspace.logs_history()) == 0
    assert r.llen(keyspace.queue("q1")) == 1


def test_the_queue_index_gets_every_queue_pushed_to(r: redis.Redis, keyspace: KeySpace, producer: Producer) -> None:
    producer.push_many([JobSpec(name="a", queue="emails"), JobSpec(name="b", queue="reports", delay_s=3)])
    producer.push("c", queue="emails")

    assert r.smembers(keyspace.queue_index()) == {b"emails", b"reports"}


@pytest.mark.parametrize("bad", ["", "a:b", "x{y}", "star*", "active", "pending", "processing", "line\nbreak"])
def test_an_invalid_queue_name_raises_before_anything_is_written(
    r: redis.Redis, keyspace: KeySpace, producer: Producer, bad: str
) -> None:
    with pytest.raises(ConfigError):
        producer.push_many([JobSpec(name="fine", queue="good"), JobSpec(name="bad", queue=bad)])
    with pytest.raises(ConfigError):
        producer.push("bad", queue=bad)

    assert all_keys(r, keyspace) == []


def test_invalid_options_raise_before_anything_is_written(
    r: redis.Redis, keyspace: KeySpace, producer: Producer
) -> None:
    with pytest.raises(ValueError):
        producer.push("", queue="good")
    with pytest.raises(ValueError):
        producer.push("a", queue="good", delay_s=-1)
    with pytest.raises(ValueError):
        producer.push("a", queue="good", max_attempts=0)
    with pytest.raises(TypeError, match="unknown_option"):
        producer.push("a", queue="good", unknown_option=1)  # type: ignore[call-arg]

    assert all_keys(r, keyspace) == []


# -- interoperability ------------------------------------------------------------------------------


def test_a_pushed_job_is_consumed_by_the_node_consumer(r: redis.Redis, keyspace: KeySpace, producer: Producer) -> None:
    seen: list[NodeJob] = []
    producer.push("send-welcome", {"to": "zoë@example.com", "tags": ["a/b"]}, queue="emails")
    producer.push("page", {"who": "ops"}, queue="emails", priority="critical")
    producer.push("digest", queue="emails", priority="low")
    producer.push("report", {"kind": "daily"}, queue="emails", job_type=JobType.CLASS)
    consumer = NodeConsumer(
        r, keyspace, ["emails"], dict.fromkeys(("send-welcome", "page", "digest", "report"), seen.append)
    )

    done = consumer.drain()

    assert [p.outcome for p in done] == ["completed"] * 4
    assert [(job.name, job.properties, job.attempt) for job in seen] == [
        ("page", {"who": "ops"}, 1),
        ("send-welcome", {"to": "zoë@example.com", "tags": ["a/b"]}, 1),
        ("report", {"kind": "daily"}, 1),
        ("digest", {}, 1),
    ]
    assert [p.lane for p in done] == ["critical", None, None, "low"]


def test_a_delayed_push_is_released_by_the_node_consumer_when_due(
    r: redis.Redis, keyspace: KeySpace, producer: Producer
) -> None:
    seen: list[NodeJob] = []
    job_id = producer.push("remind", {"n": 1}, queue="emails", delay_s=60)
    (score,) = [s for _m, s in zrange_scores(r, keyspace.delayed("emails"))]
    early = NodeConsumer(r, keyspace, ["emails"], {"remind": seen.append}, clock_ms=lambda: int(score) - 1)
    due = NodeConsumer(r, keyspace, ["emails"], {"remind": seen.append}, clock_ms=lambda: int(score))

    assert early.drain() == []
    assert [(p.job.id if p.job else None, p.outcome) for p in due.drain()] == [(job_id, "completed")]
    assert [job.properties for job in seen] == [{"n": 1}]


def test_jobs_written_by_node_are_processed_by_the_worker(
    r: redis.Redis, keyspace: KeySpace, start_worker: Callable[..., Worker]
) -> None:
    seen: list[tuple[str, str | None, dict[str, Any], int]] = []
    lock = threading.Lock()

    def record(job: JobContext) -> None:
        with lock:
            seen.append((job.id, job.name, job.properties, job.attempt))

    created = now_ms()
    r.lpush(
        keyspace.queue("emails"),
        node_job(
            "1700000000000-k3j9x2a", "send-welcome", {"to": "zoë@example.com", "path": "/a/b"}, created_at=created
        ),
        node_class_job("6f1c2b9e-2d7a-4c1e-9a57-3f0b1e2d4c5a", "SendReceipt", created_at=created),
    )
    worker = start_worker(App({"send-welcome": record, "SendReceipt": record}), queues=("emails",))

    wait_for(lambda: len(seen) == 2 and r.llen(keyspace.processing("emails", worker.id)) == 0, what="both jobs")

    assert seen == [
        ("1700000000000-k3j9x2a", "send-welcome", {"to": "zoë@example.com", "path": "/a/b"}, 1),
        ("6f1c2b9e-2d7a-4c1e-9a57-3f0b1e2d4c5a", "SendReceipt", {"orderId": 42}, 1),
    ]
    assert r.llen(keyspace.queue("emails")) == 0
    assert r.llen(keyspace.failed("emails")) == 0
