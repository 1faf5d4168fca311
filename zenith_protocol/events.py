"""Job lifecycle events: the durable feed in the events stream that the archive consumes."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Annotated, Any

from pydantic import Field

from zenith_protocol._json import MAX_SAFE_INTEGER
from zenith_protocol._types import EpochMs, JsFloat, NonNegativeInt, ProtocolVersion, WireModel
from zenith_protocol.version import PROTOCOL_VERSION

__all__ = [
    "EVENTS_STREAM_MAXLEN",
    "EVENT_FIELD",
    "MAX_STACK_CHARS",
    "EventType",
    "JobEvent",
    "OperatorAction",
    "exact_job_event",
    "implied_start",
]

EVENTS_STREAM_MAXLEN = 100_000
"""Approximate cap (``XADD ... MAXLEN ~``) of the events stream."""

EVENT_FIELD = "event"
"""The single stream-entry field holding the event JSON."""

MAX_STACK_CHARS = 16_384
"""The longest ``stack`` a writer puts in an event; a longer trace is cut at its start (PROTOCOL 8.3)."""


class EventType(str, Enum):
    """What happened to a job (``operator``: what an operator did to a queue; ``alert``: an alert's state changed)."""

    ENQUEUED = "enqueued"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    RETRIED = "retried"
    DEAD_LETTERED = "dead_lettered"
    DELETED = "deleted"
    PROMOTED = "promoted"
    RECOVERED = "recovered"
    OPERATOR = "operator"
    ALERT = "alert"


class OperatorAction(str, Enum):
    """Actions recorded by ``operator`` events (the audit trail)."""

    RETRY = "retry"
    DELETE = "delete"
    PROMOTE = "promote"
    PAUSE = "pause"
    RESUME = "resume"
    PURGE = "purge"
    CLEAR_FAILED = "clear_failed"
    SCHEDULE_REGISTER = "schedule_register"
    SCHEDULE_REMOVE = "schedule_remove"
    SCHEDULE_PAUSE = "schedule_pause"
    SCHEDULE_RESUME = "schedule_resume"
    SCHEDULE_RUN = "schedule_run"
    COMMAND = "command"
    SILENCE = "silence"
    UNSILENCE = "unsilence"
    MUTE = "mute"
    UNMUTE = "unmute"


class JobEvent(WireModel):
    """One lifecycle event.

    Per-job events carry ``jobId``; ``operator`` events carry ``action`` and ``count``;
    ``recovered`` events carry the dead worker's ``workerId`` and the ``count`` of jobs put back;
    ``alert`` events carry one alert state transition (``ruleId``, ``subject``, ``fromState``,
    ``toState``, ``seq``, ...), with ``queue`` the subject's queue (empty for other subjects).
    """

    type: Annotated[EventType | str, Field(union_mode="left_to_right")]
    queue: str
    timestamp: EpochMs
    job_id: str | None = Field(default=None, alias="jobId")
    job_name: str | None = Field(default=None, alias="jobName")
    worker_id: str | None = Field(default=None, alias="workerId")
    attempt: NonNegativeInt | None = None
    duration_ms: JsFloat | None = Field(default=None, alias="durationMs", ge=0)
    delay_ms: NonNegativeInt | None = Field(default=None, alias="delayMs")
    error: str | None = None
    stack: str | None = Field(default=None, description="the failure's traceback (failed events)")
    actor: str | None = None
    action: Annotated[OperatorAction | str | None, Field(union_mode="left_to_right")] = None
    count: NonNegativeInt | None = None
    enqueued_at_ms: EpochMs | None = Field(default=None, alias="enqueuedAt")
    started_at_ms: EpochMs | None = Field(
        default=None, alias="startedAt", description="when the attempt started, on an event that stands for its start"
    )
    payload: str | None = Field(default=None, description="the job JSON at the time of the event")
    rule_id: str | None = Field(default=None, alias="ruleId", description="alert rule (alert events)")
    subject: str | None = Field(default=None, description="alert subject, e.g. queue:emails (alert events)")
    from_state: str | None = Field(default=None, alias="fromState", description="alert state before (alert events)")
    to_state: str | None = Field(default=None, alias="toState", description="alert state after (alert events)")
    seq: NonNegativeInt | None = Field(default=None, description="the alert state's new sequence number")
    value: JsFloat | None = Field(default=None, description="the value the rule compared (alert events)")
    threshold: JsFloat | None = Field(default=None, description="the rule's threshold (alert events)")
    kind: str | None = Field(default=None, description="notification kind sent, if any (alert events)")
    severity: str | None = Field(default=None, description="the rule's severity (alert events)")
    silenced_by: str | None = Field(default=None, alias="silencedBy", description="silence, mute or inhibition")
    protocol_version: ProtocolVersion = PROTOCOL_VERSION


def _text(value: Any) -> bool:
    return type(value) is str


def _count(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_SAFE_INTEGER


def _duration(value: Any) -> bool:
    return type(value) is float and 0 <= value < math.inf


def _number(value: Any) -> bool:
    return type(value) is float and math.isfinite(value)


_EXACT: dict[str, Callable[[Any], bool]] = {
    "type": lambda value: isinstance(value, EventType),
    "queue": _text,
    "timestamp": _count,
    "job_id": _text,
    "job_name": _text,
    "worker_id": _text,
    "attempt": _count,
    "duration_ms": _duration,
    "delay_ms": _count,
    "error": _text,
    "stack": _text,
    "actor": _text,
    "action": lambda value: isinstance(value, OperatorAction),
    "count": _count,
    "enqueued_at_ms": _count,
    "started_at_ms": _count,
    "payload": _text,
    "rule_id": _text,
    "subject": _text,
    "from_state": _text,
    "to_state": _text,
    "seq": _count,
    "value": _number,
    "threshold": _number,
    "kind": _text,
    "severity": _text,
    "silenced_by": _text,
}
"""Per field (attribute name), whether a value is already what validating it gives: same type, in range.

Fields not listed here (``protocol_version``) are never taken without validation."""

_ABSENT = {name: info.default for name, info in JobEvent.model_fields.items()}
_WIRE_NAMES = frozenset(info.alias or name for name, info in JobEvent.model_fields.items())
_new_event = JobEvent.__new__
_set = object.__setattr__


def exact_job_event(fields: Mapping[str, Any]) -> JobEvent | None:
    """The event of ``fields`` (attribute names; ``None`` means absent) built without validating them again,
    or ``None`` unless each value already is what validation would make of it.

    For writers that build events of values they hold in the right types (a worker's own ids and
    counts); it is several times faster than validation, which then runs only for other input.
    Validation would give an equal event, with the same fields set.
    """
    given = {}
    fields_set = set()
    for name, value in fields.items():
        exact = _EXACT.get(name)
        if exact is None:
            return None
        if value is None:
            if name not in _WIRE_NAMES:
                fields_set.add(name)  # validation drops a null under a wire name only (_null_means_absent)
            continue
        if not exact(value):
            return None
        given[name] = value
    if "type" not in given or "queue" not in given or "timestamp" not in given:
        return None
    fields_set.update(given)
    event = _new_event(JobEvent)
    # What BaseModel.model_construct sets, without its per-field pass over aliases and defaults.
    _set(event, "__dict__", {**_ABSENT, **given})
    _set(event, "__pydantic_fields_set__", fields_set)
    _set(event, "__pydantic_extra__", {})
    _set(event, "__pydantic_private__", None)
    return event


_ENDS_ATTEMPT = (EventType.COMPLETED, EventType.FAILED)


def implied_start(event: JobEvent) -> JobEvent | None:
    """The ``started`` event that ``event`` also stands for, or ``None``.

    A worker MAY write an attempt that ended before its start was written as one ``completed`` or
    ``failed`` event carrying ``startedAt`` (PROTOCOL 8.4); readers take it as the attempt's
    ``started`` event at that time, followed by the event itself.
    """
    if event.started_at_ms is None or event.type not in _ENDS_ATTEMPT:
        return None
    values = {
        "type": EventType.STARTED,
        "queue": event.queue,
        "timestamp": event.started_at_ms,
        "job_id": event.job_id,
        "job_name": event.job_name,
        "worker_id": event.worker_id,
        "attempt": event.attempt,
        "enqueued_at_ms": event.enqueued_at_ms,
    }
    return exact_job_event(values) or JobEvent(**values)
