"""The Python ``Worker`` in-process against a real Redis: lanes, delays, pauses, limits, groups, retries, shutdown."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from event_stream import stream_events
from node_consumer import NodeConsumer, NodeJob
from patience import HANG_S
from redis.client import Pipeline
from redis.crc import key_slot
from wire_data import node_class_job, node_job
from worker_helpers import (
    Recorder,
    dead_worker,
    fields_of,
    idle,
    lrange,
    make_due,
    node_raws,
    retry_attempts,
    server_ms,
    wait_for,
    zrange_scores,
)

from zenith_protocol import (
    EventType,
    JobEvent,
    KeySpace,
    WorkerStatus,
    decode_heartbeat,
    decode_job,
    decode_log,
)
from zenith_protocol.events import implied_start
from zenith_sdk.events import EventEmitter
from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.scripts import ENQUEUE, EVENTS, FETCH, REQUEUE, SETTLE
from zenith_sdk.worker import (
    App,
    JobContext,
    RateLimit,
    Worker,
    WorkerOptionFields,
    WorkerOptions,
    recover_dead_workers,
)

StartWorker = Callable[..., Worker]


# -- running Node-shaped and Python jobs -----------------------------------------------------------


def test_jobs_written_by_node_run_with_their_properties(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    record = Recorder()
    created = server_ms(r)
    raws = [
        node_job(
            "1700000000000-k3j9x2a", "send-welcome", {"to": "zoë@example.com", "path": "/a/b"}, created_at=created
        ),
        node_class_job("6f1c2b9e-2d7a-4c1e-9a57-3f0b1e2d4c5a", "SendReceipt", created_at=created),
        node_job("1700000000001-a0b1c2d", "send-welcome", {"n": 1.5}, created_at=created, groupId="g-1", extra=True),
    ]
    r.lpush(keyspace.queue("emails"), *raws)

    worker = start_worker(App({"send-welcome": record, "SendReceipt": record}), queues=("emails",))
    wait_for(lambda: len(record) == 3 and idle(r, keyspace, worker, "emails"), what="three jobs")

    assert [(job.id, job.name, job.properties, job.attempt, job.queue) for job in record.runs] == [
        ("1700000000000-k3j9x2a", "send-welcome", {"to": "zoë@example.com", "path": "/a/b"}, 1, "emails"),
        ("6f1c2b9e-2d7a-4c1e-9a57-3f0b1e2d4c5a", "SendReceipt", {"orderId": 42}, 1, "emails"),
        ("1700000000001-a0b1c2d", "send-welcome", {"n": 1.5}, 1, "emails"),
    ]
    assert all(job.worker_id == worker.id for job in record.runs)
    assert [r.llen(key) for key in (keyspace.queue("emails"), keyspace.failed("emails"))] == [0, 0]
    assert r.scard(keyspace.group_active("emails")) == 0


def test_async_handlers_run_and_their_errors_count_as_failures(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    seen: list[tuple[str, int]] = []

    async def fine(job: JobContext) -> None:
        await asyncio.sleep(0.01)
        seen.append((job.id, job.properties["n"]))

    async def broken(job: JobContext) -> None:
        await asyncio.sleep(0)
        raise ValueError(f"bad input {job.properties['n']}")

    first = producer.push("fine", {"n": 1}, queue="q")
    failing = producer.push("broken", {"n": 2}, queue="q", max_attempts=1)
    second = producer.push("fine", {"n": 3}, queue="q")
    start_worker(App({"fine": fine, "broken": broken}), queues=("q",))

    wait_for(lambda: len(seen) == 2 and r.llen(keyspace.failed("q")) == 1, what="async jobs")
    assert seen == [(first, 1), (second, 3)]
    (dead,) = lrange(r, keyspace.failed("q"))
    assert (decode_job(dead).id, decode_job(dead).error) == (failing, "ValueError: bad input 2")


def test_every_awaitable_a_handler_returns_is_run_each_job_in_a_loop_of_its_own(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    loops: list[asyncio.AbstractEventLoop] = []  # kept, so no loop is freed and its id reused

    class Callable:
        async def __call__(self, job: JobContext) -> None:
            loops.append(asyncio.get_running_loop())

    def returns_a_coroutine(job: JobContext) -> object:
        return Callable()(job)

    for name in ("object", "object", "plain"):
        producer.push(name, queue="q")
    start_worker(App({"object": Callable(), "plain": returns_a_coroutine}), queues=("q",))

    # Each loop is closed once its job is done (a moment after the handler returned).
    wait_for(lambda: len(loops) == 3 and all(loop.is_closed() for loop in loops), what="three awaited handlers")
    assert len({id(loop) for loop in loops}) == 3


def test_priority_lanes_run_critical_high_base_low(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    record = Recorder()
    order = [("L1", "low"), ("B1", None), ("H1", "high"), ("C1", "critical"), ("B2", None), ("C2", "critical")]
    order += [("L2", "low"), ("H2", "high")]
    producer.push_many([JobSpec(name="step", properties={"tag": tag}, queue="q", priority=lane) for tag, lane in order])

    start_worker(App({"step": record}), queues=("q",), concurrency=1, prefetch=0)

    wait_for(lambda: len(record) == 8, what="eight jobs")
    assert [job.properties["tag"] for job in record.runs] == ["C1", "C2", "H1", "H2", "B1", "B2", "L1", "L2"]


def test_queues_are_served_in_the_configured_order(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    record = Recorder()
    producer.push_many([JobSpec(name="step", properties={"q": q}, queue=q) for q in ("second", "first", "second")])

    start_worker(App({"step": record}), queues=("first", "second"), concurrency=1)

    wait_for(lambda: len(record) == 3, what="three jobs")
    assert [job.queue for job in record.runs] == ["first", "second", "second"]


# -- delayed and paused ----------------------------------------------------------------------------


def test_a_delayed_job_waits_until_due(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    ran_at: dict[str, int] = {}

    def note(job: JobContext) -> None:
        ran_at[job.id] = server_ms(r)

    later = producer.push("note", queue="q", delay_s=600)
    soon = producer.push("note", queue="q", delay_s=0.3)
    ((_member, soon_due),) = [(m, s) for m, s in zrange_scores(r, keyspace.delayed("q")) if decode_job(m).id == soon]
    now = producer.push("note", queue="q")
    worker = start_worker(App({"note": note}), queues=("q",))

    wait_for(lambda: now in ran_at and soon in ran_at, what="the due jobs")
    assert ran_at[soon] >= soon_due
    assert later not in ran_at
    assert [decode_job(m).id for m, _s in zrange_scores(r, keyspace.delayed("q"))] == [later]

    make_due(r, keyspace.delayed("q"))
    wait_for(lambda: later in ran_at and idle(r, keyspace, worker, "q"), what="the promoted job")
    assert r.zcard(keyspace.delayed("q")) == 0


def test_a_due_delayed_job_is_promoted_to_its_priority_lane(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    record = Recorder()
    producer.push("step", {"tag": "base"}, queue="q")
    producer.push("step", {"tag": "critical"}, queue="q", priority="critical", delay_s=600)
    assert r.zcard(keyspace.delayed("q")) == 0  # a delayed job waits in its own lane's delayed set
    make_due(r, keyspace.delayed("q", "critical"))

    start_worker(App({"step": record}), queues=("q",), concurrency=1)

    wait_for(lambda: len(record) == 2, what="both jobs")
    assert [job.properties["tag"] for job in record.runs] == ["critical", "base"]


def test_a_paused_queue_releases_nothing_not_even_due_delayed_jobs(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    record = Recorder()
    r.set(keyspace.paused("held"), "1")
    waiting = producer.push("step", queue="held")
    delayed = producer.push("step", queue="held", delay_s=600)
    make_due(r, keyspace.delayed("held"))
    worker = start_worker(App({"step": record}), queues=("held", "other"))

    # Each fetch turn polls "held" before "other": two sentinels done means "held" was polled meanwhile.
    for _ in range(2):
        sentinel = producer.push("step", queue="other")
        wait_for(lambda: sentinel in record.ids(), what="a sentinel job")

    assert waiting not in record.ids() and delayed not in record.ids()
    assert [decode_job(raw).id for raw in lrange(r, keyspace.queue("held"))] == [waiting]
    assert [decode_job(m).id for m, _s in zrange_scores(r, keyspace.delayed("held"))] == [delayed]
    assert r.llen(keyspace.processing("held", worker.id)) == 0

    r.delete(keyspace.paused("held"))
    wait_for(lambda: {waiting, delayed} <= set(record.ids()), what="the resumed queue")
    assert r.llen(keyspace.queue("held")) == 0 and r.zcard(keyspace.delayed("held")) == 0


def test_the_old_consumer_released_due_delayed_jobs_of_a_paused_queue(r: redis.Redis, keyspace: KeySpace) -> None:
    """The quirk our worker must not copy, shown on the reference Node consumer."""
    r.set(keyspace.paused("held"), "1")
    delayed = node_job("1700000000005-wwwwwww", "reminder", {}, created_at=1, delaySeconds=2)
    r.zadd(keyspace.delayed("held"), {delayed: 1})
    ran: list[NodeJob] = []

    done = NodeConsumer(r, keyspace, ["held"], {"reminder": ran.append}).poll_once()

    # It takes a lane's due delayed job before it reads the lane's paused flag, and runs it.
    assert done is not None and done.outcome == "completed"
    assert [job.id for job in ran] == ["1700000000005-wwwwwww"]
    assert r.zcard(keyspace.delayed("held")) == 0


# -- rate limit ------------------------------------------------------------------------------------


def test_a_rate_limit_caps_the_jobs_run_per_window(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    limit = RateLimit(max_jobs=5, window_s=3600)
    first_window = int(time.time()) // limit.window_s
    record = Recorder()
    producer.push_many([JobSpec(name="step", properties={"n": n}, queue="limited") for n in range(8)])
    for _ in range(2):  # the limit is shared by every worker of the queue
        start_worker(
            App({"step": record}),
            queues=("limited", "other"),
            concurrency=2,
            prefetch=2,
            rate_limits={"limited": limit},
        )

    wait_for(lambda: len(record) >= 5, what="five jobs")
    for _ in range(2):
        sentinel = producer.push("step", queue="other")
        wait_for(lambda: sentinel in record.ids(), what="a sentinel job")

    # What is promised: at most 5 per window, in push order. Should the test straddle the top of
    # the hour, the next window lets more run; each window's counter says how many.
    windows = range(first_window, int(time.time()) // limit.window_s + 1)
    counts = {window: int(r.get(keyspace.rate_limit("limited", window)) or 0) for window in windows}
    ran = sorted(job.properties["n"] for job in record.runs if job.queue == "limited")
    assert ran == list(range(min(8, 5 * len(windows))))
    assert sum(counts.values()) == len(ran) and max(counts.values()) <= 5
    assert r.llen(keyspace.queue("limited")) == 8 - len(ran)
    assert 0 < r.ttl(keyspace.rate_limit("limited", first_window)) <= 3600


# -- failures --------------------------------------------------------------------------------------


def test_a_failing_job_is_retried_with_backoff_then_dead_lettered(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    attempts: list[int] = []

    def boom(job: JobContext) -> None:
        attempts.append(job.attempt)
        raise RuntimeError("boom")

    before = server_ms(r)
    job_id = producer.push("boom", {"n": 1}, queue="q")
    (pushed,) = lrange(r, keyspace.queue("q"))
    worker = start_worker(App({"boom": boom}), queues=("q",))
    delayed = keyspace.delayed("q")

    for attempt, delay_s in ((1, 2), (2, 4)):
        wait_for(lambda: retry_attempts(r, delayed) == [attempt] and idle(r, keyspace, worker, "q"), what="a retry")
        after = server_ms(r)
        ((member, score),) = zrange_scores(r, delayed)
        assert before + delay_s * 1000 <= score <= after + delay_s * 1000
        retry = fields_of(member)
        assert (retry["id"], retry["attempts"], retry["delaySeconds"]) == (job_id, attempt, delay_s)
        assert retry["error"] == "RuntimeError: boom"
        assert retry["createdAt"] == fields_of(pushed)["createdAt"]
        before = server_ms(r)
        make_due(r, delayed)

    wait_for(lambda: r.llen(keyspace.failed("q")) == 1 and idle(r, keyspace, worker, "q"), what="the dead letter")
    after = server_ms(r)
    (dead,) = lrange(r, keyspace.failed("q"))
    fields = fields_of(dead)
    assert (fields["id"], fields["attempts"], fields["error"]) == (job_id, 3, "RuntimeError: boom")
    assert before <= fields["failedAt"] <= after
    assert fields["protocolVersion"] == 2
    assert attempts == [1, 2, 3]
    assert r.zcard(delayed) == 0 and r.llen(keyspace.queue("q")) == 0

    events = stream_events(r, keyspace, job_id)
    assert [e.type for e in events] == [
        EventType.ENQUEUED,
        *[EventType.STARTED, EventType.FAILED, EventType.RETRIED] * 2,
        EventType.STARTED,
        EventType.FAILED,
        EventType.DEAD_LETTERED,
    ]
    assert [e.attempt for e in events if e.type is EventType.STARTED] == [1, 2, 3]
    assert [e.delay_ms for e in events if e.type is EventType.RETRIED] == [2000, 4000]
    assert all(e.error == "RuntimeError: boom" for e in events if e.type is EventType.FAILED)
    for failed in (e for e in events if e.type is EventType.FAILED):  # the handler's own traceback
        stack = failed.stack or ""
        assert stack.startswith("Traceback (most recent call last):") and stack.endswith("RuntimeError: boom")
        assert 'raise RuntimeError("boom")' in stack and ", in boom" in stack
    assert all(e.stack is None for e in events if e.type is not EventType.FAILED)
    (dead_event,) = [e for e in events if e.type is EventType.DEAD_LETTERED]
    assert (dead_event.payload, dead_event.worker_id, dead_event.attempt) == (dead.decode(), worker.id, 3)


def test_a_retried_job_goes_back_to_its_priority_lane(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer, gate: threading.Event
) -> None:
    lock = threading.Lock()
    order: list[tuple[str, int]] = []

    def step(job: JobContext) -> None:
        tag = job.properties["tag"]
        with lock:
            order.append((tag, job.attempt))
        if tag == "urgent" and job.attempt == 1:
            raise RuntimeError("first try fails")
        if tag == "b1":
            gate.wait(5)

    producer.push("step", {"tag": "urgent"}, queue="q", priority="critical")
    worker = start_worker(App({"step": step}), queues=("q",), concurrency=1, prefetch=0)
    wait_for(lambda: retry_attempts(r, keyspace.delayed("q", "critical")) == [1], what="the retry")
    producer.push_many([JobSpec(name="step", properties={"tag": tag}, queue="q") for tag in ("b1", "b2")])
    wait_for(lambda: ("b1", 1) in order, what="b1 to start")
    make_due(r, keyspace.delayed("q", "critical"))
    gate.set()

    wait_for(lambda: len(order) == 4 and idle(r, keyspace, worker, "q"), what="four runs")
    assert order == [("urgent", 1), ("b1", 1), ("urgent", 2), ("b2", 1)]


def test_a_small_retry_after_is_rounded_up_to_whole_seconds(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    def boom(job: JobContext) -> None:
        raise RuntimeError("boom")

    before = server_ms(r)
    producer.push("boom", queue="q", retry_after_s=0.3, max_attempts=3)
    worker = start_worker(App({"boom": boom}), queues=("q",))
    delayed = keyspace.delayed("q")

    for attempt, delay_s in ((1, 1), (2, 2)):  # ceil(0.3 * 2) = 1, then ceil(0.3 * 4) = 2
        wait_for(lambda: retry_attempts(r, delayed) == [attempt] and idle(r, keyspace, worker, "q"), what="a retry")
        after = server_ms(r)
        ((member, score),) = zrange_scores(r, delayed)
        assert (fields_of(member)["attempts"], fields_of(member)["delaySeconds"]) == (attempt, delay_s)
        assert fields_of(member)["retryAfterSeconds"] == 0.3
        assert before + delay_s * 1000 <= score <= after + delay_s * 1000
        before = server_ms(r)
        make_due(r, delayed)

    wait_for(lambda: r.llen(keyspace.failed("q")) == 1, what="the dead letter")


def test_a_zero_backoff_retries_at_once_up_to_the_attempt_limits(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    attempts: dict[str, list[int]] = {}

    def boom(job: JobContext) -> None:
        attempts.setdefault(job.properties["tag"], []).append(job.attempt)
        raise RuntimeError("boom")

    app = App()
    app.register("boom", boom)
    app.register("capped", boom, max_attempts=2)
    producer.push("boom", {"tag": "job-sets-4"}, queue="q", retry_after_s=0, max_attempts=4)
    producer.push("boom", {"tag": "worker-default"}, queue="q", retry_after_s=0)
    producer.push("capped", {"tag": "handler-sets-2"}, queue="q", retry_after_s=0)
    producer.push("capped", {"tag": "job-overrides-handler"}, queue="q", retry_after_s=0, max_attempts=1)
    worker = start_worker(app, queues=("q",), default_max_attempts=3)

    wait_for(lambda: r.llen(keyspace.failed("q")) == 4 and idle(r, keyspace, worker, "q"), what="four dead letters")
    assert attempts == {
        "job-sets-4": [1, 2, 3, 4],
        "worker-default": [1, 2, 3],
        "handler-sets-2": [1, 2],
        "job-overrides-handler": [1],
    }


def test_max_attempts_zero_means_the_consumer_default(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    attempts: list[int] = []

    def boom(job: JobContext) -> None:
        attempts.append(job.attempt)
        raise RuntimeError("boom")

    raw = node_job("1700000000000-zzzzzzz", "boom", {}, created_at=1, maxAttempts=0, retryAfterSeconds=0)
    r.lpush(keyspace.queue("q"), raw)
    worker = start_worker(App({"boom": boom}), queues=("q",), default_max_attempts=3)

    wait_for(lambda: r.llen(keyspace.failed("q")) == 1 and idle(r, keyspace, worker, "q"), what="the dead letter")
    assert attempts == [1, 2, 3]


def test_a_job_over_its_timeout_fails_and_the_worker_keeps_serving(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer, gate: threading.Event
) -> None:
    record = Recorder()
    app = App({"quick": record})

    @app.handler("slow", timeout_s=0.2)
    def slow(job: JobContext) -> None:
        gate.wait(2)

    slow_id = producer.push("slow", queue="q", max_attempts=1)
    quick_id = producer.push("quick", queue="q")
    worker = start_worker(app, queues=("q",), concurrency=1)

    wait_for(lambda: quick_id in record.ids() and r.llen(keyspace.failed("q")) == 1, what="the timeout")
    (dead,) = lrange(r, keyspace.failed("q"))
    assert decode_job(dead).id == slow_id
    error = decode_job(dead).error or ""
    assert error.startswith("TimeoutError") and "0.2 s" in error, error
    later = producer.push("quick", queue="q")
    wait_for(lambda: later in record.ids() and idle(r, keyspace, worker, "q"), what="another job")
    (failed_event,) = [e for e in stream_events(r, keyspace, slow_id) if e.type is EventType.FAILED]
    assert failed_event.error is not None and "timed out" in failed_event.error
    assert failed_event.stack is None  # the runtime stopped waiting: no traceback to show


MALFORMED: list[tuple[bytes, str]] = [
    (b"not json at all", "invalid_json"),
    (b"[1,2,3]", "not_an_object"),
    (b'{"id":"x-1","type":"json"}', "missing_field"),
    (b'{"id":"x-2","type":"json","data":"not json"}', "invalid_field"),
    (b'{"id":"x-3","type":"json","data":"{}","protocolVersion":99}', "unsupported_version"),
]


def test_undecodable_entries_are_dead_lettered_with_their_exact_text(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    record = Recorder()
    r.lpush(keyspace.queue("q"), *(raw for raw, _kind in MALFORMED))
    good = producer.push("good", queue="q")
    worker = start_worker(App({"good": record}), queues=("q",))

    wait_for(lambda: good in record.ids() and idle(r, keyspace, worker, "q"), what="the good job")
    dead = {decode_job(raw).properties["raw"].encode(): decode_job(raw) for raw in lrange(r, keyspace.failed("q"))}
    assert set(dead) == {raw for raw, _kind in MALFORMED}
    for raw, kind in MALFORMED:
        wrapper = dead[raw]
        assert wrapper.id == "invalid-" + hashlib.sha1(raw).hexdigest()[:16]
        assert wrapper.name == "zenith.invalid-payload"
        assert wrapper.error is not None and wrapper.error.startswith(f"invalid payload: {kind}: "), wrapper.error
        assert (wrapper.max_attempts, wrapper.failed_at_ms is not None) == (1, True)
    events = [e for e in stream_events(r, keyspace) if e.type is EventType.DEAD_LETTERED]
    assert len(events) == len(MALFORMED)


def test_bytes_that_are_not_utf8_are_dead_lettered_in_base64(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    record = Recorder()
    raw = b'{"id":"\xff\xfe","type":"json"}'
    r.lpush(keyspace.queue("q"), raw)
    good = producer.push("good", queue="q")
    start_worker(App({"good": record}), queues=("q",))

    wait_for(lambda: good in record.ids() and r.llen(keyspace.failed("q")) == 1, what="the dead letter")
    (entry,) = lrange(r, keyspace.failed("q"))
    wrapper = decode_job(entry)
    assert base64.b64decode(wrapper.properties["rawBase64"]) == raw
    assert wrapper.error is not None and wrapper.error.startswith("invalid payload: invalid_encoding: ")


def test_a_job_without_handler_is_dead_lettered_at_once(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    record = Recorder()
    orphan = producer.push("nobody-handles-this", {"x": 1}, queue="q", max_attempts=5)
    good = producer.push("good", queue="q")
    start_worker(App({"good": record}), queues=("q",))

    wait_for(lambda: good in record.ids() and r.llen(keyspace.failed("q")) == 1, what="the dead letter")
    (entry,) = lrange(r, keyspace.failed("q"))
    job = decode_job(entry)
    assert (job.id, job.name, job.properties, job.attempts) == (orphan, "nobody-handles-this", {"x": 1}, 1)
    assert job.error is not None and "nobody-handles-this" in job.error
    assert r.zcard(keyspace.delayed("q")) == 0


def test_a_handler_raising_system_exit_only_fails_its_job(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    record = Recorder()

    def leave(job: JobContext) -> None:
        raise SystemExit(3)

    failing = producer.push("leave", queue="q", max_attempts=1)
    good = producer.push("good", queue="q")
    worker = start_worker(App({"leave": leave, "good": record}), queues=("q",))

    wait_for(lambda: good in record.ids() and r.llen(keyspace.failed("q")) == 1, what="both jobs")
    (dead,) = lrange(r, keyspace.failed("q"))
    assert (decode_job(dead).id, decode_job(dead).error) == (failing, "SystemExit: 3")
    assert worker._thread is not None and worker._thread.is_alive()


def test_the_worker_runs_on_the_cluster_safe_layout(r: redis.Redis, keyspace: KeySpace) -> None:
    space = keyspace.model_copy(update={"cluster_safe": True})
    record = Recorder()

    def boom(job: JobContext) -> None:
        raise RuntimeError("boom")

    producer = Producer(r, keyspace=space)
    ids = producer.push_many([JobSpec(name="step", queue="q", group_id="g", properties={"n": n}) for n in range(3)])
    ids.append(producer.push("step", queue="q", priority="high", delay_s=600))
    failing = producer.push("boom", queue="q", max_attempts=1)
    make_due(r, space.delayed("q", "high"))
    worker = Worker(App({"step": record, "boom": boom}), r, keyspace=space, queues=("q",), poll_interval_s=0.05)
    worker.start()
    try:
        wait_for(lambda: len(record) == 4 and r.llen(space.failed("q")) == 1, what="the jobs")
        wait_for(lambda: r.llen(space.processing("q", worker.id)) == 0, what="the acks")
    finally:
        worker.stop(timeout_s=HANG_S)
        worker.client.connection_pool.disconnect()

    assert sorted(record.ids()) == sorted(ids)
    assert [job.properties["n"] for job in record.runs if job.payload.group_id] == [0, 1, 2]
    assert decode_job(lrange(r, space.failed("q"))[0]).id == failing
    assert "{q}" in space.failed("q") and r.exists(keyspace.failed("q")) == 0
    assert r.scard(space.group_active("q")) == 0


@pytest.fixture
def script_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every EVAL/EVALSHA any client sends during the test, direct or pipelined (arguments as queued)."""
    calls: list[tuple[Any, ...]] = []
    lock = threading.Lock()
    original_execute = Pipeline.execute
    original_command = redis.Redis.execute_command

    def is_script(args: tuple[Any, ...]) -> bool:
        return bool(args) and str(args[0]).upper() in ("EVAL", "EVALSHA")

    def execute(self: Pipeline, raise_on_error: bool = True) -> list[Any]:
        with lock:
            calls.extend(args for args, _options in self.command_stack if is_script(args))
        return original_execute(self, raise_on_error)

    def execute_command(self: redis.Redis, *args: Any, **options: Any) -> Any:
        if is_script(args):
            with lock:
                calls.append(args)
        return original_command(self, *args, **options)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(Pipeline, "execute", execute)
    monkeypatch.setattr(redis.Redis, "execute_command", execute_command)
    return calls


def test_every_script_call_stays_in_one_slot_in_the_cluster_safe_layout(
    r: redis.Redis, keyspace: KeySpace, script_calls: list[tuple[Any, ...]]
) -> None:
    space = keyspace.model_copy(update={"cluster_safe": True})
    record = Recorder()
    attempts: list[int] = []

    def boom(job: JobContext) -> None:
        attempts.append(job.attempt)
        raise RuntimeError("boom")

    producer = Producer(r, keyspace=space)
    producer.push_many([JobSpec(name="step", queue="q", group_id="g") for _ in range(3)])
    producer.push("step", queue="q", delay_s=600)
    producer.push("boom", queue="q", max_attempts=2, retry_after_s=0)
    make_due(r, space.delayed("q"))
    dead_worker(r, space, "dead-1", {"q": node_raws("orphan", 2)}, age_ms=60_000)
    recover_dead_workers(r, space, events=EventEmitter(r, keyspace=space))
    worker = Worker(App({"step": record, "boom": boom}), r, keyspace=space, queues=("q",), poll_interval_s=0.05)
    worker.start()
    try:
        wait_for(lambda: len(record) == 6 and r.llen(space.failed("q")) == 1, what="the jobs")
    finally:
        worker.stop(timeout_s=HANG_S)
        worker.client.connection_pool.disconnect()

    assert attempts == [1, 2]
    names = {script.sha: script.name for script in (FETCH, SETTLE, REQUEUE, ENQUEUE, EVENTS)}
    used: set[str] = set()
    for args in script_calls:
        keys = [key if isinstance(key, bytes) else str(key).encode() for key in args[3 : 3 + int(args[2])]]
        if not keys or not keys[0].startswith(keyspace.queue_prefix.split(":")[0].encode()):
            continue  # another test run sharing this Redis
        name = names.get(str(args[1]), str(args[1]))
        used.add(name)
        assert len({key_slot(key) for key in keys}) == 1, f"{name} spans slots: {keys}"
    assert {"fetch", "settle", "requeue", "enqueue"} <= used


# -- parity with the old consumer ------------------------------------------------------------------


def test_a_retry_looks_the_same_whether_node_or_python_failed_it(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    def boom(job: object) -> None:
        raise RuntimeError("boom")

    created = server_ms(r)
    r.lpush(keyspace.queue("node"), node_job("1700000000000-aaaaaaa", "boom", {"n": 1}, created_at=created))
    r.lpush(keyspace.queue("py"), node_job("1700000000000-aaaaaaa", "boom", {"n": 1}, created_at=created))

    (node_run,) = NodeConsumer(r, keyspace, ["node"], {"boom": boom}).drain()
    worker = start_worker(App({"boom": boom}), queues=("py",))
    wait_for(lambda: r.zcard(keyspace.delayed("py")) == 1 and idle(r, keyspace, worker, "py"), what="a retry")

    assert node_run.outcome == "retried"
    ((node_member, node_score),) = zrange_scores(r, keyspace.delayed("node"))
    ((py_member, _py_score),) = zrange_scores(r, keyspace.delayed("py"))
    node_fields, py_fields = fields_of(node_member), fields_of(py_member)
    for name in ("id", "type", "data", "attempts", "delaySeconds", "maxAttempts"):
        assert node_fields[name] == py_fields[name], name
    assert (py_fields["attempts"], py_fields["delaySeconds"]) == (1, 2)
    assert node_score - node_fields["createdAt"] == 2000  # the old consumer rewrote createdAt to "now"
    assert py_fields["createdAt"] == created


def test_a_job_retried_by_node_runs_as_its_next_attempt_in_python(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    calls: list[int] = []

    def fail_once(job: NodeJob) -> None:
        calls.append(job.attempt)
        raise RuntimeError("first try fails")

    r.lpush(keyspace.queue("q"), node_job("1700000000000-bbbbbbb", "flaky", {}, created_at=server_ms(r)))
    NodeConsumer(r, keyspace, ["q"], {"flaky": fail_once}).drain()
    make_due(r, keyspace.delayed("q"))
    record = Recorder()
    start_worker(App({"flaky": record}), queues=("q",))

    wait_for(lambda: len(record) == 1, what="the retried job")
    assert calls == [1]
    assert (record.runs[0].id, record.runs[0].attempt) == ("1700000000000-bbbbbbb", 2)


def test_a_job_retried_by_python_runs_as_its_next_attempt_in_node(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    def boom(job: JobContext) -> None:
        raise RuntimeError("boom")

    job_id = producer.push("flaky", queue="q")
    worker = start_worker(App({"flaky": boom}), queues=("q",))
    wait_for(lambda: r.zcard(keyspace.delayed("q")) == 1 and idle(r, keyspace, worker, "q"), what="a retry")
    worker.stop(timeout_s=HANG_S)
    seen: list[NodeJob] = []

    (run,) = NodeConsumer(r, keyspace, ["q"], {"flaky": seen.append}, clock_ms=lambda: server_ms(r) + 60_000).drain()

    assert (run.outcome, seen[0].id, seen[0].attempt) == ("completed", job_id, 2)


# -- graceful stop ---------------------------------------------------------------------------------


def test_a_graceful_stop_finishes_running_jobs_and_puts_prefetched_ones_back(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer, gate: threading.Event
) -> None:
    started = threading.Event()
    finished: list[str] = []

    def step(job: JobContext) -> None:
        started.set()
        gate.wait(5)
        finished.append(job.id)

    first, second, third = producer.push_many([JobSpec(name="step", properties={"n": n}, queue="q") for n in range(3)])
    worker = start_worker(App({"step": step}), queues=("q",), concurrency=1, prefetch=2, shutdown_timeout_s=5)
    processing = keyspace.processing("q", worker.id)
    wait_for(lambda: started.is_set() and r.llen(processing) == 3, what="one running, two prefetched")

    worker.request_stop()
    gate.set()
    worker.stop(timeout_s=HANG_S)

    assert worker._thread is not None and not worker._thread.is_alive()
    assert finished == [first]
    assert {decode_job(raw).id for raw in lrange(r, keyspace.queue("q"))} == {second, third}
    assert r.exists(processing) == 0
    assert r.exists(keyspace.worker(worker.id)) == 0
    assert r.zscore(keyspace.worker_index(), worker.id) is None
    assert r.hget(keyspace.worker_queues(), worker.id) is None
    assert [e.type for e in stream_events(r, keyspace, first)][-1] is EventType.COMPLETED


def test_prefetched_jobs_put_back_on_stop_keep_their_order(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer, gate: threading.Event
) -> None:
    started = threading.Event()

    def step(job: JobContext) -> None:
        started.set()
        gate.wait(5)

    producer.push_many([JobSpec(name="step", properties={"n": n}, queue="q") for n in range(5)])
    worker = start_worker(App({"step": step}), queues=("q",), concurrency=1, prefetch=3, shutdown_timeout_s=5)
    wait_for(lambda: started.is_set() and r.llen(keyspace.processing("q", worker.id)) == 4, what="prefetch")
    worker.request_stop()
    gate.set()
    worker.stop(timeout_s=HANG_S)

    oldest_first = [decode_job(raw).properties["n"] for raw in reversed(lrange(r, keyspace.queue("q")))]
    assert oldest_first == [1, 2, 3, 4]


def test_a_job_still_running_at_the_shutdown_timeout_is_put_back(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer, gate: threading.Event
) -> None:
    started = threading.Event()

    def stuck(job: JobContext) -> None:
        started.set()
        gate.wait(5)

    job_id = producer.push("stuck", queue="q", priority="high")
    worker = start_worker(App({"stuck": stuck}), queues=("q",), shutdown_timeout_s=0.2)
    wait_for(started.is_set, what="the job to start")

    worker.stop(timeout_s=HANG_S)

    assert worker._thread is not None and not worker._thread.is_alive()
    assert [decode_job(raw).id for raw in lrange(r, keyspace.lane("q", "high"))] == [job_id]
    assert r.exists(keyspace.processing("q", worker.id), keyspace.worker(worker.id)) == 0
    assert EventType.COMPLETED not in [e.type for e in stream_events(r, keyspace, job_id)]


# -- heartbeat and events --------------------------------------------------------------------------


def test_the_heartbeat_shows_the_running_job(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer, gate: threading.Event
) -> None:
    def slow_job(job: JobContext) -> None:
        gate.wait(5)

    started_ms = int(time.time() * 1000)
    worker = start_worker(
        App({"slow-job": slow_job}),
        queues=("q", "other"),
        concurrency=2,
        heartbeat_interval_s=0.05,
        heartbeat_ttl_s=3,
    )
    key = keyspace.worker(worker.id)
    wait_for(lambda: r.exists(key), what="the heartbeat")
    job_id = producer.push("slow-job", queue="q")

    def busy() -> bool:
        raw = r.get(key)
        return raw is not None and decode_heartbeat(raw).current_job_id == job_id

    wait_for(busy, what="the busy heartbeat")
    beat = decode_heartbeat(r.get(key) or b"")
    assert (beat.status, beat.job_name) == (WorkerStatus.BUSY, "slow-job")
    assert (beat.id, beat.pid, beat.queues, beat.concurrency) == (worker.id, os.getpid(), ["q", "other"], 2)
    assert (beat.language, beat.protocol_version) == ("python", 2)
    assert 0 < r.ttl(key) <= 3
    assert json.loads(r.hget(keyspace.worker_queues(), worker.id) or b"") == ["q", "other"]
    score = r.zscore(keyspace.worker_index(), worker.id)
    assert score is not None and started_ms <= score <= int(time.time() * 1000)

    gate.set()

    def idle_beat() -> bool:
        raw = r.get(key)
        return raw is not None and decode_heartbeat(raw).status == WorkerStatus.IDLE

    wait_for(idle_beat, what="the idle heartbeat")
    beat = decode_heartbeat(r.get(key) or b"")
    assert (beat.current_job_id, beat.job_name) == (None, None)


def test_a_job_has_enqueued_started_completed_events(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    record = Recorder()
    job_id = producer.push("step", {"n": 1}, queue="q")
    (raw,) = lrange(r, keyspace.queue("q"))
    worker = start_worker(App({"step": record}), queues=("q",))

    def written() -> list[JobEvent]:  # an attempt written as one event stands for its start too (PROTOCOL 8.4)
        return [e for event in stream_events(r, keyspace, job_id) for e in (implied_start(event), event) if e]

    wait_for(lambda: len(written()) == 3, what="three events")
    enqueued, started, completed = written()
    assert [enqueued.type, started.type, completed.type] == [EventType.ENQUEUED, EventType.STARTED, EventType.COMPLETED]
    assert (started.worker_id, started.attempt, started.job_name) == (worker.id, 1, "step")
    assert (completed.worker_id, completed.attempt, completed.job_name) == (worker.id, 1, "step")
    assert completed.duration_ms is not None and completed.duration_ms >= 0
    created = decode_job(raw).created_at_ms
    assert enqueued.enqueued_at_ms == started.enqueued_at_ms == completed.enqueued_at_ms == created
    assert enqueued.timestamp <= started.timestamp <= completed.timestamp
    minute = completed.timestamp // 60_000
    assert int(r.get(keyspace.throughput(minute)) or 0) >= 1
    lines = [decode_log(line) for line in lrange(r, keyspace.logs_history())]
    mine = [line.level for line in lines if line.job_id == job_id and line.worker_id == worker.id]
    assert mine in (["success"], ["success", "info"])  # one line per event written, newest first


def test_a_job_still_running_after_the_write_delay_has_its_started_event_written(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    gate = threading.Event()
    job_id = producer.push("slow", queue="q")
    worker = start_worker(App({"slow": lambda job: gate.wait(30)}), queues=("q",))
    try:
        wait_for(lambda: len(stream_events(r, keyspace, job_id)) == 2, what="the started event")
        enqueued, started = stream_events(r, keyspace, job_id)
        assert (started.type, started.worker_id, started.attempt) == (EventType.STARTED, worker.id, 1)
        assert r.llen(keyspace.processing("q", worker.id)) == 1  # written while the job runs
    finally:
        gate.set()
    wait_for(lambda: len(stream_events(r, keyspace, job_id)) == 3, what="the completed event")
    completed = stream_events(r, keyspace, job_id)[2]
    assert completed.type == EventType.COMPLETED and completed.started_at_ms is None
    assert implied_start(completed) is None
    lines = [decode_log(line) for line in lrange(r, keyspace.logs_history())]
    assert [line.level for line in lines if line.job_id == job_id and line.worker_id == worker.id] == [
        "success",
        "info",
    ]


def test_a_worker_without_events_writes_none(r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker) -> None:
    record = Recorder()

    def boom(job: JobContext) -> None:
        raise RuntimeError("boom")

    producer = Producer(r, keyspace=keyspace, events=False)
    ok = producer.push("ok", queue="q")
    producer.push("boom", queue="q", max_attempts=1)
    r.lpush(keyspace.queue("q"), b"garbage")
    worker = start_worker(App({"ok": record, "boom": boom}), queues=("q",), events=False)

    wait_for(lambda: ok in record.ids() and r.llen(keyspace.failed("q")) == 2, what="the jobs")
    wait_for(lambda: idle(r, keyspace, worker, "q"), what="the acks")
    assert r.exists(keyspace.events(), keyspace.logs_history()) == 0
    assert list(r.scan_iter(match=keyspace.throughput("*"))) == []


# -- NOSCRIPT --------------------------------------------------------------------------------------


def test_the_worker_survives_a_script_flush(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    record = Recorder()
    lock = threading.Lock()
    flushes: list[str] = []

    def flush_then(job: JobContext) -> None:
        # Flush between this job's fetch and its settle, so the settle/release scripts meet NOSCRIPT.
        with lock:
            flushes.append(job.id)
        r.script_flush()
        if job.properties.get("fail"):
            raise RuntimeError("boom")
        record(job)

    worker = start_worker(App({"step": record, "flush": flush_then}), queues=("q",), concurrency=2)
    first = producer.push_many([JobSpec(name="step", properties={"n": n}, queue="q") for n in range(5)])
    wait_for(lambda: set(first) <= set(record.ids()), what="the first jobs")

    r.script_flush()
    second = producer.push_many([JobSpec(name="step", properties={"n": n}, queue="q") for n in range(5)])
    wait_for(lambda: set(second) <= set(record.ids()), what="jobs after a flush")

    grouped = producer.push_many([JobSpec(name="flush", queue="q", group_id="g") for _ in range(3)])
    failing = producer.push("flush", {"fail": True}, queue="q", max_attempts=1)
    wait_for(lambda: set(grouped) <= set(record.ids()) and r.llen(keyspace.failed("q")) == 1, what="grouped jobs")
    wait_for(lambda: idle(r, keyspace, worker, "q") and r.scard(keyspace.group_active("q")) == 0, what="settles")

    assert len(record) == 13 and len(set(record.ids())) == 13
    assert sorted(flushes) == sorted([*grouped, failing])
    assert decode_job(lrange(r, keyspace.failed("q"))[0]).id == failing
    assert r.llen(keyspace.queue("q")) == 0 and r.zcard(keyspace.delayed("q")) == 0


def test_the_option_keywords_of_a_worker_are_the_fields_of_its_options(r: redis.Redis) -> None:
    assert set(WorkerOptionFields.__annotations__) == set(WorkerOptions.model_fields)

    worker = Worker(App({}), r, queues=["a", "b"], concurrency=3, worker_id="w-options")

    assert (worker.options.queues, worker.options.concurrency, worker.id) == (("a", "b"), 3, "w-options")
    with pytest.raises(TypeError, match="not both"):
        Worker(App({}), r, options=WorkerOptions(), concurrency=2)
    worker.client.connection_pool.disconnect()


def test_a_worker_with_max_jobs_stops_gracefully_after_them_and_puts_the_rest_back(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    record = Recorder()
    ids = [producer.push("job", {"n": n}, queue="q") for n in range(10)]
    worker = start_worker(App({"job": record}), queues=("q",), max_jobs=3, prefetch=4)
    wait_for(lambda: worker._thread is not None and not worker._thread.is_alive(), what="the worker to stop")

    assert (worker.processed, len(record)) == (3, 3)
    left = [decode_job(raw).id for raw in lrange(r, keyspace.queue("q"))]
    assert sorted([*left, *(job.id for job in record.runs)]) == sorted(ids)  # nothing lost, nothing run twice
    assert r.llen(keyspace.processing("q", worker.id)) == 0


def test_a_worker_started_under_the_id_of_one_that_died_puts_back_what_that_one_held(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    # What a worker killed mid-job leaves: a job in its processing list, and its queue list.
    held = producer.push("job", {"n": 1}, queue="q")
    r.lmove(keyspace.queue("q"), keyspace.processing("q", "fixed-id"), "RIGHT", "LEFT")
    r.lpush(keyspace.queue("old"), node_job("1700000000000-k3j9x2a", "job", {"n": 2}, created_at=1))
    r.lmove(keyspace.queue("old"), keyspace.processing("old", "fixed-id"), "RIGHT", "LEFT")
    r.hset(keyspace.worker_queues(), "fixed-id", json.dumps(["q", "old"]))
    record = Recorder()

    worker = start_worker(App({"job": record}), queues=("q",), worker_id="fixed-id")
    wait_for(lambda: len(record) == 1, what="the job the dead worker held")

    assert [job.id for job in record.runs] == [held]
    assert r.lrange(keyspace.processing("old", "fixed-id"), 0, -1) == []  # a queue it no longer serves
    assert [decode_job(raw).id for raw in lrange(r, keyspace.queue("old"))] == ["1700000000000-k3j9x2a"]
    recovered = [e for e in stream_events(r, keyspace) if e.type is EventType.RECOVERED]
    assert sorted((e.queue, e.count, e.actor) for e in recovered) == [("old", 1, worker.id), ("q", 1, worker.id)]
