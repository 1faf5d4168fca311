"""``EventEmitter``: the stream entry, live log line, history and throughput counter of each event."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from counting import CountingRedis
from event_stream import stream_events
from hypothesis import given, settings
from hypothesis import strategies as st
from patience import HANG_S
from redis.client import Pipeline, PubSub

from zenith_protocol import (
    EventType,
    JobEvent,
    JobPayload,
    KeySpace,
    LogEntry,
    LogLevel,
    OperatorAction,
    decode_event_fields,
    decode_log,
    encode_event,
    encode_job,
    encode_log,
)
from zenith_sdk.events import AttemptEvents, EventEmitter, EventFields, encoded, job_event, log_entry_for
from zenith_sdk.scripts import scripts_for

MINUTE_MS = 60_000
T0 = 1_767_225_600_000
"""2026-01-01T00:00:00Z, the first millisecond of a minute."""


# -- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def emitter(r: redis.Redis, keyspace: KeySpace) -> EventEmitter:
    return EventEmitter(r, keyspace=keyspace)


@pytest.fixture
def subscribe(r: redis.Redis) -> Iterator[Callable[[str], PubSub]]:
    """Subscribes to a channel (confirmed before it returns); every subscription is closed afterwards."""
    subscriptions: list[PubSub] = []

    def open_subscription(channel: str) -> PubSub:
        pubsub: PubSub = r.pubsub()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
        subscriptions.append(pubsub)
        pubsub.subscribe(channel)
        deadline = time.monotonic() + HANG_S
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.1)
            if message is not None and message["type"] == "subscribe":
                return pubsub
        pytest.fail(f"no subscribe confirmation on {channel}")

    yield open_subscription
    for pubsub in subscriptions:
        pubsub.close()


def next_message(pubsub: PubSub) -> bytes:
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message is not None and message["type"] == "message":
            data = message["data"]
            assert isinstance(data, bytes)
            return data
    pytest.fail("no message published")


def warm_scripts(client: CountingRedis) -> None:
    """Load the scripts (so a call is one round trip, not NOSCRIPT + load + retry) and forget that round trip."""
    scripts_for(client).load()
    client.round_trips.clear()


def history(r: redis.Redis, space: KeySpace) -> list[bytes]:
    lines = r.lrange(space.logs_history(), 0, -1)
    assert all(isinstance(line, bytes) for line in lines)
    return [line for line in lines if isinstance(line, bytes)]


def a_job(name: str = "resize") -> JobPayload:
    return JobPayload.create(name, {"w": 100, "note": "zoë/ok"}, job_id="job-1", created_at_ms=T0 - 5000)


# -- one emit ----------------------------------------------------------------------------------------


def test_emit_writes_entry_log_line_and_publishes_in_one_round_trip(
    counting: CountingRedis, keyspace: KeySpace, subscribe: Callable[[str], PubSub]
) -> None:
    pubsub = subscribe(keyspace.logs_channel())
    emitter = EventEmitter(counting, keyspace=keyspace)
    warm_scripts(counting)
    event = job_event(
        EventType.COMPLETED, "images", a_job(), worker_id="w-1", attempt=1, duration_ms=184.2, timestamp_ms=T0 + 123
    )

    emitter.emit(event)

    assert len(counting.round_trips) == 1
    ((_entry_id, fields),) = counting.xrange(keyspace.events()) or []
    assert fields is not None
    assert set(fields) == {b"event"}
    assert decode_event_fields(fields) == event
    (line,) = history(counting, keyspace)
    entry = decode_log(line)
    assert entry == log_entry_for(event)
    assert (entry.level, entry.worker_id, entry.queue, entry.job_id) == (LogLevel.SUCCESS, "w-1", "images", "job-1")
    assert entry.timestamp.isoformat(timespec="milliseconds") == "2026-01-01T00:00:00.123+00:00"
    assert "resize" in entry.message and "completed" in entry.message
    assert next_message(pubsub) == line


def test_several_events_share_one_round_trip_in_order(
    counting: CountingRedis, keyspace: KeySpace, r: redis.Redis
) -> None:
    job = a_job()
    events = [
        job_event(EventType.STARTED, "images", job, worker_id="w-1", attempt=1),
        job_event(EventType.FAILED, "images", job, worker_id="w-1", attempt=1, error="boom"),
        job_event(EventType.RETRIED, "images", job, worker_id="w-1", attempt=1, delay_ms=2000),
    ]

    emitter = EventEmitter(counting, keyspace=keyspace)
    warm_scripts(counting)

    emitter.emit(*events)

    assert len(counting.round_trips) == 1
    assert stream_events(r, keyspace) == events
    assert [decode_log(line) for line in reversed(history(r, keyspace))] == [log_entry_for(e) for e in events]


def test_text_with_newlines_reaches_the_stream_and_the_log_as_it_was(
    r: redis.Redis, keyspace: KeySpace, emitter: EventEmitter
) -> None:
    job = a_job()
    events = [
        job_event(EventType.FAILED, "images", job, worker_id="w-1", attempt=1, error="line one\nline two\r\n"),
        job_event(EventType.DEAD_LETTERED, "images", job, worker_id="w\n1", error="\n"),
    ]

    emitter.emit(*events)

    assert stream_events(r, keyspace) == events  # the script splits its arguments at raw newlines only
    assert [decode_log(line) for line in reversed(history(r, keyspace))] == [log_entry_for(e) for e in events]


def test_encoded_events_are_appended_in_order_and_a_raw_newline_is_refused(
    r: redis.Redis, keyspace: KeySpace, emitter: EventEmitter
) -> None:
    first, second = (job_event(EventType.DELETED, "images", f"j{n}", actor="ann") for n in (1, 2))

    emitter.emit_encoded([encode_event(first), encode_event(second).encode()])
    with pytest.raises(ValueError, match="raw newline"):
        emitter.emit_encoded([encode_event(first), '{"type":"deleted",\n"queue":"images","timestamp":1}'])

    assert stream_events(r, keyspace) == [first, second]
    assert history(r, keyspace) == []


def test_emit_works_after_redis_lost_its_scripts(r: redis.Redis, keyspace: KeySpace, emitter: EventEmitter) -> None:
    emitter.emit(job_event(EventType.COMPLETED, "q", "before", timestamp_ms=T0))
    r.script_flush()

    emitter.emit(job_event(EventType.COMPLETED, "q", "after", timestamp_ms=T0))

    assert [e.job_id for e in stream_events(r, keyspace)] == ["before", "after"]
    assert [decode_log(line).job_id for line in history(r, keyspace)] == ["after", "before"]
    assert r.get(keyspace.throughput(T0 // MINUTE_MS)) == b"2"


@pytest.mark.parametrize("plain", [False, True], ids=["script-pipeline", "redis-py-pipeline"])
def test_write_queues_the_events_with_the_callers_own_commands(
    r: redis.Redis, keyspace: KeySpace, emitter: EventEmitter, plain: bool
) -> None:
    scripts_for(r).load()
    pipe = r.pipeline(transaction=True) if plain else scripts_for(r).pipeline(transaction=True)
    commands = pipe if isinstance(pipe, Pipeline) else pipe.commands
    commands.lpush(keyspace.queue("q"), "job")
    assert emitter.write(pipe, [job_event(EventType.ENQUEUED, "q", "j-1", timestamp_ms=T0)])
    assert not emitter.write(pipe, [])

    assert pipe.execute() == [1, 1]
    assert [e.job_id for e in stream_events(r, keyspace)] == ["j-1"]


def test_emitting_nothing_writes_nothing(counting: CountingRedis, keyspace: KeySpace) -> None:
    EventEmitter(counting, keyspace=keyspace).emit()

    assert counting.round_trips == []
    assert [key for pattern in keyspace.scan_patterns() for key in counting.scan_iter(match=pattern)] == []


# -- throughput --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "counted"),
    [
        (EventType.COMPLETED, True),
        (EventType.FAILED, True),
        (EventType.ENQUEUED, False),
        (EventType.STARTED, False),
        (EventType.RETRIED, False),
        (EventType.DEAD_LETTERED, False),
        (EventType.RECOVERED, False),
        (EventType.DELETED, False),
    ],
)
def test_only_finished_attempts_count_towards_throughput(
    r: redis.Redis, keyspace: KeySpace, emitter: EventEmitter, event_type: EventType, counted: bool
) -> None:
    emitter.emit(job_event(event_type, "images", a_job(), timestamp_ms=T0 + 30_000))

    key = keyspace.throughput(T0 // MINUTE_MS)
    if counted:
        assert r.get(key) == b"1"
        assert 0 < r.ttl(key) <= 3600
    else:
        assert r.exists(key) == 0
    assert len(list(r.scan_iter(match=keyspace.throughput("*")))) == int(counted)


def test_throughput_counts_per_minute_of_the_event(r: redis.Redis, keyspace: KeySpace, emitter: EventEmitter) -> None:
    job = a_job()
    emitter.emit(
        job_event(EventType.COMPLETED, "q", job, timestamp_ms=T0),
        job_event(EventType.FAILED, "q", job, error="x", timestamp_ms=T0 + MINUTE_MS - 1),
        job_event(EventType.COMPLETED, "q", job, timestamp_ms=T0 + MINUTE_MS),
    )
    emitter.emit(job_event(EventType.COMPLETED, "q", job, timestamp_ms=T0 + 1))

    first, second = keyspace.throughput(T0 // MINUTE_MS), keyspace.throughput(T0 // MINUTE_MS + 1)
    assert (r.get(first), r.get(second)) == (b"3", b"1")
    assert 0 < r.ttl(first) <= 3600 and 0 < r.ttl(second) <= 3600


# -- the live log ------------------------------------------------------------------------------------


def test_without_live_log_no_line_is_published_or_kept(
    r: redis.Redis, keyspace: KeySpace, subscribe: Callable[[str], PubSub]
) -> None:
    pubsub = subscribe(keyspace.logs_channel())
    quiet = EventEmitter(r, keyspace=keyspace, live_log=False)
    loud = EventEmitter(r, keyspace=keyspace)
    silent_event = job_event(EventType.COMPLETED, "q", "silent", timestamp_ms=T0)
    marker = job_event(EventType.COMPLETED, "q", "marker", timestamp_ms=T0)

    quiet.emit(silent_event)
    assert r.exists(keyspace.logs_history()) == 0
    loud.emit(marker)

    # Both went through the same server in order: had the first published, it would come first.
    assert decode_log(next_message(pubsub)).job_id == "marker"
    assert [decode_log(line).job_id for line in history(r, keyspace)] == ["marker"]
    assert [e.job_id for e in stream_events(r, keyspace)] == ["silent", "marker"]
    assert r.get(keyspace.throughput(T0 // MINUTE_MS)) == b"2"


def test_the_history_keeps_the_newest_100_lines(r: redis.Redis, keyspace: KeySpace, emitter: EventEmitter) -> None:
    emitter.emit(*(job_event(EventType.STARTED, "q", f"a-{n}", timestamp_ms=T0) for n in range(60)))
    emitter.emit(*(job_event(EventType.STARTED, "q", f"b-{n}", timestamp_ms=T0) for n in range(45)))

    lines = history(r, keyspace)
    assert len(lines) == 100
    assert decode_log(lines[0]).job_id == "b-44"
    assert decode_log(lines[-1]).job_id == "a-5"


@pytest.mark.parametrize(
    ("fields", "worker_id"),
    [({"worker_id": "w-1", "actor": "alice"}, "w-1"), ({"actor": "alice"}, "alice"), ({}, "zenith")],
)
def test_the_log_line_names_the_worker_else_the_actor_else_zenith(
    r: redis.Redis, keyspace: KeySpace, emitter: EventEmitter, fields: dict[str, Any], worker_id: str
) -> None:
    emitter.emit(job_event(EventType.STARTED, "q", "j-1", timestamp_ms=T0, **fields))

    (line,) = history(r, keyspace)
    assert decode_log(line).worker_id == worker_id


# -- the stream cap ----------------------------------------------------------------------------------


def test_the_stream_is_capped_approximately(r: redis.Redis, keyspace: KeySpace) -> None:
    emitter = EventEmitter(r, keyspace=keyspace, stream_maxlen=10, live_log=False)

    for batch in range(3):
        emitter.emit(*(job_event(EventType.STARTED, "q", f"{batch}-{n}", timestamp_ms=T0) for n in range(150)))

    length = r.xlen(keyspace.events())
    node_entries = int(r.config_get("stream-node-max-entries")["stream-node-max-entries"] or 100)
    assert 10 <= length <= 10 + node_entries
    if node_entries >= 20:
        # "MAXLEN ~" drops whole nodes only, so more than 10 stay; an exact MAXLEN would leave 10.
        assert length > 10
    assert stream_events(r, keyspace)[-1].job_id == "2-149"


def test_the_default_stream_cap_is_the_protocol_one(r: redis.Redis, keyspace: KeySpace) -> None:
    assert EventEmitter(r, keyspace=keyspace).stream_maxlen == 100_000


def test_a_stream_cap_below_one_is_refused(r: redis.Redis, keyspace: KeySpace) -> None:
    with pytest.raises(ValueError, match="stream_maxlen"):
        EventEmitter(r, keyspace=keyspace, stream_maxlen=0)


# -- the conveniences --------------------------------------------------------------------------------

Convenience = Callable[[EventEmitter, JobPayload | str], None]
CONVENIENCES: list[tuple[str, Convenience, EventType, dict[str, Any], LogLevel]] = [
    ("enqueued", lambda e, job: e.enqueued("images", job), EventType.ENQUEUED, {}, LogLevel.INFO),
    (
        "started",
        lambda e, job: e.started("images", job, worker_id="w-1", attempt=1),
        EventType.STARTED,
        {"worker_id": "w-1", "attempt": 1},
        LogLevel.INFO,
    ),
    (
        "completed",
        lambda e, job: e.completed("images", job, duration_ms=12.5, worker_id="w-1", attempt=2),
        EventType.COMPLETED,
        {"duration_ms": 12.5, "worker_id": "w-1", "attempt": 2},
        LogLevel.SUCCESS,
    ),
    (
        "failed",
        lambda e, job: e.failed("images", job, error="ValueError: boom", attempt=1),
        EventType.FAILED,
        {"error": "ValueError: boom", "attempt": 1},
        LogLevel.ERROR,
    ),
    (
        "retried",
        lambda e, job: e.retried("images", job, delay_ms=2000, attempt=1),
        EventType.RETRIED,
        {"delay_ms": 2000, "attempt": 1},
        LogLevel.WARN,
    ),
    (
        "dead_lettered",
        lambda e, job: e.dead_lettered("images", job, error="gave up"),
        EventType.DEAD_LETTERED,
        {"error": "gave up"},
        LogLevel.ERROR,
    ),
]


@pytest.mark.parametrize(
    ("method", "call", "event_type", "expected", "level"), CONVENIENCES, ids=[c[0] for c in CONVENIENCES]
)
def test_each_convenience_writes_its_event_type_and_fields(
    r: redis.Redis,
    keyspace: KeySpace,
    emitter: EventEmitter,
    method: str,
    call: Convenience,
    event_type: EventType,
    expected: dict[str, Any],
    level: LogLevel,
) -> None:
    job = a_job()
    before = int(time.time() * 1000)

    call(emitter, job)

    after = int(time.time() * 1000)
    (event,) = stream_events(r, keyspace)
    assert event.type == event_type
    assert (event.queue, event.job_id, event.job_name, event.enqueued_at_ms) == ("images", "job-1", "resize", T0 - 5000)
    assert before <= event.timestamp <= after
    for name, value in expected.items():
        assert getattr(event, name) == value, name
    keeps_payload = event_type in (EventType.ENQUEUED, EventType.DEAD_LETTERED)
    assert event.payload == (encode_job(job) if keeps_payload else None)
    (line,) = history(r, keyspace)
    entry: LogEntry = decode_log(line)
    assert (entry.level, entry.job_id, entry.queue) == (level, "job-1", "images")


@pytest.mark.parametrize(
    ("method", "call", "event_type", "expected", "level"), CONVENIENCES, ids=[c[0] for c in CONVENIENCES]
)
def test_each_convenience_works_with_only_a_job_id(
    r: redis.Redis,
    keyspace: KeySpace,
    emitter: EventEmitter,
    method: str,
    call: Convenience,
    event_type: EventType,
    expected: dict[str, Any],
    level: LogLevel,
) -> None:
    call(emitter, "celery-7f3a")

    (event,) = stream_events(r, keyspace)
    assert (event.type, event.queue, event.job_id) == (event_type, "images", "celery-7f3a")
    assert (event.job_name, event.payload, event.enqueued_at_ms) == (None, None, None)
    for name, value in expected.items():
        assert getattr(event, name) == value, name
    (line,) = history(r, keyspace)
    entry = decode_log(line)
    assert (entry.level, entry.job_id) == (level, "celery-7f3a")
    assert "celery-7f3a" in entry.message


def test_a_job_id_with_a_name_for_other_job_systems(r: redis.Redis, keyspace: KeySpace, emitter: EventEmitter) -> None:
    emitter.started("default", "rq-42", job_name="tasks.add", worker_id="rq@host", attempt=1)
    emitter.completed("default", "rq-42", job_name="tasks.add", worker_id="rq@host", duration_ms=3.0)

    started, completed = stream_events(r, keyspace)
    assert (started.type, started.job_name, started.worker_id) == (EventType.STARTED, "tasks.add", "rq@host")
    assert (completed.type, completed.job_name, completed.duration_ms) == (EventType.COMPLETED, "tasks.add", 3.0)
    assert "tasks.add" in decode_log(history(r, keyspace)[0]).message


def test_an_emitter_built_from_a_url_writes_to_that_server(redis_url: str, r: redis.Redis, keyspace: KeySpace) -> None:
    with EventEmitter(redis_url, keyspace=keyspace) as emitter:
        emitter.completed("q", "j-1", duration_ms=1)

    assert [e.job_id for e in stream_events(r, keyspace)] == ["j-1"]


def test_the_keywords_of_job_event_are_the_event_fields_it_does_not_set_itself() -> None:
    own = {"type", "queue", "timestamp", "job_name", "protocol_version"}

    assert set(EventFields.__annotations__) | own == set(JobEvent.model_fields)
    assert not set(EventFields.__annotations__) & own


def test_log_lines_say_when_a_delayed_job_runs_and_when_a_retry_comes() -> None:
    job = a_job()
    delayed = job_event(EventType.ENQUEUED, "images", job, delay_ms=30_000)
    retried = job_event(EventType.RETRIED, "images", job, worker_id="w-1", attempt=1, delay_ms=2000)

    assert log_entry_for(delayed).message.endswith("enqueued, runs in 30 s")
    assert log_entry_for(retried).message.endswith("retried, next attempt in 2 s")


# -- what goes on the wire -------------------------------------------------------------------------


def _raw_entries(r: redis.Redis, space: KeySpace) -> list[bytes]:
    entries = []
    for _entry_id, fields in r.xrange(space.events()) or []:
        assert fields is not None
        value = fields[b"event"]
        assert isinstance(value, bytes)
        entries.append(value)
    return entries


@pytest.mark.parametrize(
    "event",
    [
        job_event(EventType.STARTED, "images", a_job(), worker_id="w-1", attempt=1, timestamp_ms=T0 + 5),
        job_event(EventType.COMPLETED, "images", a_job(), worker_id="w-1", attempt=1, duration_ms=0.5, timestamp_ms=T0),
        job_event(EventType.FAILED, "imagés", a_job("zoë"), attempt=2, error="\ud800", stack="x\n", timestamp_ms=T0),
        job_event(EventType.OPERATOR, "q", action=OperatorAction.PAUSE, actor="alice", count=0, timestamp_ms=T0),
        JobEvent.model_validate({"type": "brand-new", "queue": "q", "timestamp": T0, "extra": [1.0, None]}),
    ],
    ids=["started", "completed", "failed-non-ascii-surrogate", "operator", "unknown-type-and-members"],
)
def test_the_entry_and_the_line_are_the_canonical_bytes(
    r: redis.Redis, keyspace: KeySpace, emitter: EventEmitter, event: JobEvent
) -> None:
    emitter.emit(event)

    assert _raw_entries(r, keyspace) == [encode_event(event).encode()]
    assert history(r, keyspace) == [encode_log(log_entry_for(event)).encode()]


def test_a_call_of_thousands_of_events_keeps_them_all_in_order(
    r: redis.Redis, keyspace: KeySpace, emitter: EventEmitter
) -> None:
    # More lines than one LPUSH of the script takes (it pushes them 1,000 at a time).
    events = [job_event(EventType.STARTED, "q", f"j-{n}", timestamp_ms=T0) for n in range(2_500)]

    emitter.emit(*events)

    assert [decode_log(line).job_id for line in history(r, keyspace)] == [f"j-{n}" for n in range(2_499, 2_399, -1)]
    assert [e.job_id for e in stream_events(r, keyspace)] == [f"j-{n}" for n in range(2_500)]


def test_the_counters_of_job_names_in_any_text(r: redis.Redis, keyspace: KeySpace, emitter: EventEmitter) -> None:
    # The script's head is JSON (ASCII): a name out of ASCII is escaped there and stored as UTF-8; a
    # lone surrogate, which UTF-8 cannot carry, is stored as U+FFFD, as a JavaScript writer stores it.
    names = ['zoë "quoted" \\ /', "bad \ud800", "日本"]
    emitter.emit(
        *(
            job_event(EventType.COMPLETED, "q", f"j-{n}", job_name=name, duration_ms=2.0, timestamp_ms=T0)
            for n, name in enumerate(names)
        )
    )

    counters = r.hgetall(keyspace.queue_counters("q"))
    assert counters[b"completed"] == b"3"
    assert counters[b"durationSumMs"] == b"6"
    for stored in ['zoë "quoted" \\ /', "bad \ufffd", "日本"]:
        assert counters[f"completed:{stored}".encode()] == b"1"
    assert r.get(keyspace.throughput(T0 // MINUTE_MS)) == b"3"


def test_a_job_event_of_exact_values_equals_a_validated_one() -> None:
    job = a_job()

    exact = job_event(EventType.COMPLETED, "q", job, worker_id="w", attempt=1, duration_ms=3.0, timestamp_ms=T0)
    validated = job_event(EventType.COMPLETED, "q", job, worker_id="w", attempt=1, duration_ms=3, timestamp_ms=T0)

    assert exact == validated
    assert exact.model_fields_set == validated.model_fields_set
    assert type(validated.duration_ms) is float


def test_a_job_event_still_refuses_what_validation_refuses() -> None:
    with pytest.raises(ValueError, match="attempt"):
        job_event(EventType.STARTED, "q", "j", attempt=-1)


@settings(max_examples=200, deadline=None)
@given(
    job_id=st.text(min_size=1, max_size=12),
    name=st.text(min_size=1, max_size=12),
    worker=st.text(max_size=12),
    attempt=st.integers(min_value=1, max_value=10),
    duration_ms=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    started_ms=st.none() | st.integers(min_value=0, max_value=2**45),
    at_ms=st.integers(min_value=0, max_value=2**45),
)
def test_a_workers_attempt_events_are_what_the_generic_path_writes(
    job_id: str, name: str, worker: str, attempt: int, duration_ms: float, started_ms: int | None, at_ms: int
) -> None:
    job = JobPayload.create(name, {"n": 1}, job_id=job_id, created_at_ms=at_ms)
    attempts = AttemptEvents(worker)
    started = attempts.started("q", job, attempt, at_ms)
    completed = attempts.completed("q", job, attempt, duration_ms, started_ms=started_ms)
    fields: dict[str, Any] = {"worker_id": worker, "attempt": attempt}
    generic_start = encoded(job_event(EventType.STARTED, "q", job, timestamp_ms=at_ms, **fields))
    end_ms = int(json.loads(completed.event)["timestamp"])
    generic_end = encoded(
        job_event(
            EventType.COMPLETED,
            "q",
            job,
            timestamp_ms=end_ms,
            duration_ms=duration_ms,
            started_at_ms=started_ms,
            **fields,
        )
    )
    # What is written and what is counted (a started event counts nothing, so nothing else matters for it).
    written = [(e.event, e.line, e.queue, e.minute, e.counter) for e in (started, generic_start)]
    assert written[0] == written[1]
    assert completed == generic_end


def test_a_completed_event_encoded_later_carries_the_time_it_was_timed_at(r: redis.Redis, keyspace: KeySpace) -> None:
    # A worker times a job's completed event when the job ends and encodes it with its round trip.
    job = JobPayload.create("resize", {"n": 1}, job_id="j-1", created_at_ms=1_000)
    attempts = AttemptEvents("w-1")
    before_ms = int(time.time() * 1000)
    later = attempts.completed_later("q", job, 2, 12.5, started_ms=before_ms - 13)
    after_ms = int(time.time() * 1000)
    time.sleep(0.05)

    event = later.encoded()
    now_built = attempts.completed("q", job, 2, 12.5, started_ms=before_ms - 13)

    timestamp = int(json.loads(event.event)["timestamp"])
    assert before_ms <= timestamp <= after_ms < int(json.loads(now_built.event)["timestamp"])
    same_time = now_built.event.replace(str(json.loads(now_built.event)["timestamp"]).encode(), str(timestamp).encode())
    assert event.event == same_time
    assert (event.queue, event.minute, event.counter) == ("q", timestamp // 60_000, now_built.counter)
    assert EventEmitter(r, keyspace=keyspace).prepare([later]) == [event]
