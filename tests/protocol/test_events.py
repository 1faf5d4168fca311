"""``exact_job_event``: an event built without validation is the one validation builds, or none is."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.strategies import text
from zenith_protocol import EventType, JobEvent, OperatorAction, encode_event
from zenith_protocol._json import MAX_SAFE_INTEGER
from zenith_protocol.events import exact_job_event

_REQUIRED = ("type", "queue", "timestamp")
_NAMES = [name for name in JobEvent.model_fields if name not in (*_REQUIRED, "protocol_version")]
_VALUES = st.one_of(
    st.none(),
    text(),
    st.integers(min_value=-2, max_value=MAX_SAFE_INTEGER + 2),
    st.floats(),
    st.booleans(),
    st.sampled_from(list(EventType)),
    st.sampled_from(list(OperatorAction)),
)


def _validated(fields: dict[str, Any]) -> JobEvent | None:
    try:
        return JobEvent(**fields)
    except ValueError:
        return None


@settings(max_examples=400, deadline=None)
@given(
    fields=st.fixed_dictionaries(
        {
            "type": st.sampled_from(list(EventType)) | _VALUES,
            "queue": text() | _VALUES,
            "timestamp": st.integers(0, MAX_SAFE_INTEGER) | _VALUES,
        },
        optional={name: _VALUES for name in _NAMES},
    )
)
def test_an_exact_event_equals_the_validated_one(fields: dict[str, Any]) -> None:
    exact = exact_job_event(fields)

    if exact is not None:
        validated = _validated(fields)
        assert validated is not None
        assert exact == validated
        assert exact.model_fields_set == validated.model_fields_set
        assert encode_event(exact) == encode_event(validated)


_TYPED: dict[str, st.SearchStrategy[Any]] = {
    name: st.none() | st.integers(0, MAX_SAFE_INTEGER)
    for name in ("attempt", "delay_ms", "count", "enqueued_at_ms", "started_at_ms", "seq")
}
_TYPED.update({name: st.none() | st.floats(allow_nan=False) for name in ("duration_ms", "value", "threshold")})
_TYPED["action"] = st.none() | st.sampled_from(list(OperatorAction))


@settings(max_examples=200, deadline=None)
@given(
    fields=st.fixed_dictionaries(
        {"type": st.sampled_from(list(EventType)), "queue": text(), "timestamp": st.integers(0, MAX_SAFE_INTEGER)},
        optional={name: _TYPED.get(name, st.none() | text()) for name in _NAMES},
    )
)
def test_events_of_values_in_the_right_types_are_mostly_built_exactly(fields: dict[str, Any]) -> None:
    exact = exact_job_event(fields)
    validated = _validated(fields)

    if exact is None:  # only for what validation refuses: a negative or an infinite duration
        assert validated is None or validated.duration_ms != fields.get("duration_ms")
    else:
        assert exact == validated
        assert validated is not None and exact.model_fields_set == validated.model_fields_set


def test_a_workers_event_is_built_without_validation() -> None:
    fields: dict[str, Any] = {
        "type": EventType.COMPLETED,
        "queue": "emails",
        "timestamp": 1767225601184,
        "job_id": "j-1",
        "job_name": None,
        "worker_id": "w-1",
        "attempt": 1,
        "duration_ms": 184.2,
        "stack": None,
    }

    event = exact_job_event(fields)

    assert event is not None
    assert event == JobEvent(**fields)
    # As validation has it: a null given by attribute name is set, one given by its wire name ("stack") is not.
    assert event.model_fields_set == JobEvent(**fields).model_fields_set
    assert event.model_fields_set == {"type", "queue", "timestamp", "job_id", "job_name", "worker_id", "attempt"} | {
        "duration_ms"
    }
    assert event.protocol_version == 2 and event.job_name is None and event.model_extra == {}


@pytest.mark.parametrize(
    "change",
    [
        {"type": "completed"},  # validation makes it the enum member
        {"action": "retry"},
        {"attempt": True},
        {"attempt": -1},
        {"attempt": MAX_SAFE_INTEGER + 1},
        {"duration_ms": 3},  # validation makes it a float
        {"duration_ms": -1.0},
        {"duration_ms": math.inf},
        {"value": math.nan},
        {"queue": b"q"},
        {"protocol_version": 2},
        {"unknown": "x"},
    ],
)
def test_anything_validation_would_change_or_refuse_is_left_to_it(change: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"type": EventType.STARTED, "queue": "q", "timestamp": 1, **change}

    assert exact_job_event(fields) is None


@pytest.mark.parametrize("missing", ["type", "queue", "timestamp"])
def test_an_event_without_a_required_field_is_left_to_validation(missing: str) -> None:
    fields: dict[str, Any] = {"type": EventType.STARTED, "queue": "q", "timestamp": 1}
    del fields[missing]

    assert exact_job_event(fields) is None
