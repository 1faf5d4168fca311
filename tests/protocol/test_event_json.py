"""The direct writers of events and log lines: the same bytes as the generic encoder, or none at all."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.strategies import job_events, text
from zenith_protocol import (
    EventType,
    JobEvent,
    LogEntry,
    LogLevel,
    OperatorAction,
    encode_event,
    encode_log,
)
from zenith_protocol._event_json import attempt_texts, event_json, log_json
from zenith_protocol._json import MAX_SAFE_INTEGER
from zenith_protocol.codec import _encode, encode_log_line

PROPERTY = settings(max_examples=300, deadline=None)

_FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e-7, 1e-6, 1.5e-5, 1e-5, 0.1 + 0.2, 1e15, 1e16, 2.0**53, 1e20, 1e21, 1.5e300]),
)
_COUNTS = st.integers(min_value=0, max_value=MAX_SAFE_INTEGER)
_OPTIONAL_TEXT = st.none() | text()


@st.composite
def any_events(draw: st.DrawFn) -> JobEvent:
    """Events with any field set, alert fields and floats of every magnitude included."""
    fields: dict[str, Any] = {
        "type": draw(st.sampled_from(list(EventType)) | text()),
        "queue": draw(text()),
        "timestamp": draw(_COUNTS),
        "durationMs": draw(st.none() | _FLOATS.map(abs)),
        "value": draw(st.none() | _FLOATS),
        "threshold": draw(st.none() | _FLOATS),
        "action": draw(st.none() | st.sampled_from(list(OperatorAction)) | text()),
    }
    for name in ("jobId", "jobName", "workerId", "error", "stack", "actor", "payload", "ruleId", "subject"):
        fields[name] = draw(_OPTIONAL_TEXT)
    for name in ("fromState", "toState", "kind", "severity", "silencedBy"):
        fields[name] = draw(_OPTIONAL_TEXT)
    for name in ("attempt", "delayMs", "count", "enqueuedAt", "startedAt", "seq"):
        fields[name] = draw(st.none() | _COUNTS)
    return JobEvent.model_validate({key: value for key, value in fields.items() if value is not None})


@PROPERTY
@given(event=st.one_of(job_events(), any_events()))
def test_an_event_is_written_as_the_generic_encoder_writes_it(event: JobEvent) -> None:
    assert encode_event(event) == _encode(event)


def _worker_event(**fields: Any) -> JobEvent:
    base: dict[str, Any] = {
        "type": EventType.COMPLETED,
        "queue": "emails",
        "timestamp": 1767225601184,
        "job_id": "0f8c2f9e-2c1d-4d5e-9a7b-3f1e2d4c5b6a",
        "job_name": "SendWelcomeEmail",
        "worker_id": "py-worker-web1-4242",
        "attempt": 1,
        "duration_ms": 184.2,
        "enqueued_at_ms": 1767225600000,
    }
    return JobEvent(**{**base, **fields})


def test_a_workers_event_takes_the_direct_path() -> None:
    event = _worker_event()

    assert event_json(event) == (
        '{"type":"completed","queue":"emails","timestamp":1767225601184,'
        '"jobId":"0f8c2f9e-2c1d-4d5e-9a7b-3f1e2d4c5b6a","jobName":"SendWelcomeEmail",'
        '"workerId":"py-worker-web1-4242","attempt":1,"durationMs":184.2,"enqueuedAt":1767225600000,"protocolVersion":2}'
    )


@pytest.mark.parametrize(
    "event",
    [
        JobEvent.model_validate({"type": "started", "queue": "q", "timestamp": 1, "extra": None}),
        JobEvent.model_validate({"type": "started", "queue": "q", "timestamp": 1, "extra": 1.0}),
        _worker_event(error="bad \ud800 text"),
        _worker_event(duration_ms=1e-7),
        _worker_event(duration_ms=1e16),
        _worker_event(value=-1e300),
    ],
    ids=["null-extra", "float-extra", "lone-surrogate", "tiny-float", "huge-float", "huge-negative-value"],
)
def test_what_the_direct_path_does_not_know_is_left_to_the_generic_encoder(event: JobEvent) -> None:
    assert event_json(event) is None
    assert encode_event(event) == _encode(event)


@pytest.mark.parametrize("duration_ms", [0.0, -0.0, 1.0, 184.0, 0.0123, 1e-5, 123456789.5, 999999999999999.9])
def test_plain_floats_are_written_directly_as_javascript_does(duration_ms: float) -> None:
    event = _worker_event(duration_ms=duration_ms)

    assert event_json(event) is not None
    assert encode_event(event) == _encode(event)


@PROPERTY
@given(
    kind=st.sampled_from([EventType.STARTED, EventType.COMPLETED]),
    queue=text(),
    timestamp_ms=_COUNTS,
    job_id=text(),
    job_name=_OPTIONAL_TEXT,
    worker_id=text(),
    attempt=_COUNTS,
    enqueued_at_ms=st.none() | _COUNTS,
    duration_ms=st.none() | _FLOATS.map(abs),
    started_at_ms=st.none() | _COUNTS,
)
def test_a_workers_attempt_event_is_written_as_the_generic_encoder_writes_it(
    kind: EventType,
    queue: str,
    timestamp_ms: int,
    job_id: str,
    job_name: str | None,
    worker_id: str,
    attempt: int,
    enqueued_at_ms: int | None,
    duration_ms: float | None,
    started_at_ms: int | None,
) -> None:
    values = (queue, timestamp_ms, job_id, job_name, worker_id, attempt, enqueued_at_ms, duration_ms, started_at_ms)
    texts = attempt_texts(kind.value, *values)
    written = None if texts is None else texts[0]
    event = JobEvent(
        type=kind, queue=queue, timestamp=timestamp_ms, job_id=job_id, job_name=job_name, worker_id=worker_id,
        attempt=attempt, enqueued_at_ms=enqueued_at_ms, duration_ms=duration_ms, started_at_ms=started_at_ms,
    )  # fmt: skip
    assert written is None or written == _encode(event)
    level = LogLevel.SUCCESS if kind is EventType.COMPLETED else LogLevel.INFO
    with_line = attempt_texts(kind.value, *values, level.value)
    if with_line is not None:
        message = f"Job {job_name or '?'} ({job_id}) {kind.value}"
        message += "" if duration_ms is None else f" in {duration_ms:.0f} ms"
        line = LogEntry(
            level=level, message=message, worker_id=worker_id, queue=queue, job_id=job_id, timestamp=timestamp_ms
        )
        assert with_line == (written, encode_log(line))


def test_a_workers_attempt_event_takes_the_direct_path() -> None:
    event = _worker_event(started_at_ms=1767225601000)
    job_id = "0f8c2f9e-2c1d-4d5e-9a7b-3f1e2d4c5b6a"

    def written(
        duration_ms: float | None, started_at_ms: int | None, worker_id: str = "py-worker-web1-4242"
    ) -> str | None:
        texts = attempt_texts(
            "completed", "emails", 1767225601184, job_id, "SendWelcomeEmail", worker_id, 1, 1767225600000,
            duration_ms, started_at_ms,
        )  # fmt: skip
        return None if texts is None else texts[0]

    assert written(184.2, 1767225601000) == _encode(event)
    assert written(1e-7, None) is None  # JavaScript writes 1e-7
    assert written(184.2, None, "bad \ud800") is None


# -- log lines ---------------------------------------------------------------------------------------


@PROPERTY
@given(
    level=st.sampled_from(list(LogLevel)),
    message=text(max_size=40),
    worker_id=_OPTIONAL_TEXT,
    queue=_OPTIONAL_TEXT,
    job_id=_OPTIONAL_TEXT,
    timestamp_ms=st.integers(min_value=0, max_value=253_402_300_799_999),
)
def test_a_log_line_is_written_as_encode_log_writes_its_entry(
    level: LogLevel, message: str, worker_id: str | None, queue: str | None, job_id: str | None, timestamp_ms: int
) -> None:
    entry = LogEntry(
        level=level, message=message, worker_id=worker_id, queue=queue, job_id=job_id, timestamp=timestamp_ms
    )

    written = encode_log_line(
        level, message, timestamp_ms=timestamp_ms, worker_id=worker_id, queue=queue, job_id=job_id
    )

    assert written == encode_log(entry)


def test_a_log_line_takes_the_direct_path() -> None:
    line = log_json("success", "Job SendWelcomeEmail completed in 184 ms", "py-worker-web1-4242", "emails", "j/1", 5)

    assert line == (
        '{"level":"success","message":"Job SendWelcomeEmail completed in 184 ms","workerId":"py-worker-web1-4242",'
        '"queue":"emails","jobId":"j/1","timestamp":"1970-01-01T00:00:00.005Z","protocolVersion":2}'
    )


@pytest.mark.parametrize(
    ("fields", "timestamp_ms"),
    [({"message": "\udc00"}, 0), ({"worker_id": "w\ud800"}, 0), ({}, 253_402_300_800_000)],
    ids=["lone-surrogate-message", "lone-surrogate-worker", "year-10000"],
)
def test_what_the_direct_log_path_does_not_know_is_left_to_the_generic_one(
    fields: dict[str, str], timestamp_ms: int
) -> None:
    values = {"message": "m", "worker_id": "w", **fields}

    assert log_json("info", values["message"], values["worker_id"], "q", None, timestamp_ms) is None


def test_a_log_line_with_a_lone_surrogate_is_escaped_as_javascript_does() -> None:
    written = encode_log_line(LogLevel.INFO, "x\ud800", timestamp_ms=0, worker_id="w")

    assert written == encode_log(LogEntry(level=LogLevel.INFO, message="x\ud800", worker_id="w", timestamp=0))
    assert "\\ud800" in written


def test_a_level_given_as_text_is_read_as_the_model_reads_it() -> None:
    written = encode_log_line("warning", "slow", timestamp_ms=0)

    assert written == '{"level":"warn","message":"slow","timestamp":"1970-01-01T00:00:00.000Z","protocolVersion":2}'
